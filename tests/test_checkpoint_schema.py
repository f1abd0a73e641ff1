"""The checkpoint schema (issue 18): a hostile checkpoint that loads safely but holds wrong fields
is refused by ``dtg sample``, ``dtg train --resume`` and ``dtg train --init`` with exit status 1
and a message naming the field, never a traceback (status 3) and never a silent success.

Three checkpoints are trained once per module, 2 steps each, from the fastest example of each
objective family: ``ddpm_moons`` (denoising, with EMA weights), ``shuffle3`` (masking) and
``gmm25_tb`` (trajectory balance: a second optimizer group for log Z). Each variant of the issue
is written beside them and run through the three commands in process (``dtg.cli.main``).
benchmarks/checkpoint_fuzz.py does the same for every leaf of the checkpoints.
"""

from __future__ import annotations

import contextlib
import io
import math
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import EXAMPLES

import dtg
import dtg.cli
from dtg.errors import DtgRuntimeError
from dtg.runtime import train
from dtg.runtime.checkpoint import FORMAT_VERSION, load_checkpoint
from dtg.runtime.checkpoint_schema import program_sha256

MODELS = {"denoising": "ddpm_moons", "masking": "shuffle3", "tb": "gmm25_tb"}
COMMANDS = ("sample", "resume", "init")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Each model's program file and the content of its 2-step checkpoint."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("trained")
    out = {}
    for kind, name in MODELS.items():
        program = EXAMPLES / f"{name}.dtg"
        model = dtg.load(program).compile(device="cpu")
        train(model, steps=2, batch=8, out=folder / name, progress=False)
        content = torch.load(folder / name / "checkpoint.pt", weights_only=True)
        out[kind] = {"program": program, "content": content, "model": model}
    yield out
    torch.set_num_threads(threads)


def cli(*argv: str) -> tuple[int, str]:
    """``dtg ARGV`` in process: the exit status and everything it printed."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
        code = dtg.cli.main([str(a) for a in argv])
    return code, printed.getvalue()


def command(name: str, program: Path, checkpoint: Path, work: Path) -> tuple[int, str]:
    """Run ``sample``, ``resume`` (one more step) or ``init`` on ``checkpoint``."""
    if name == "sample":
        return cli("sample", program, "--checkpoint", checkpoint, "-n", 4, "-o", work / "s.npy")
    if name == "resume":
        return cli("train", program, "--resume", "--steps", 3, "--out", checkpoint.parent,
                   "--no-progress")  # fmt: skip
    return cli("train", program, "--init", checkpoint, "--steps", 1, "--batch", 4,
               "--out", work / "init", "--no-progress")  # fmt: skip


def write(content: Any, folder: Path) -> Path:
    """``content`` saved as ``folder/run/checkpoint.pt`` (a run folder to resume)."""
    path = folder / "run" / "checkpoint.pt"
    path.parent.mkdir(parents=True)
    torch.save(content, path)
    return path


def edited(content: dict, change: Callable[[dict], Any]) -> dict:
    """A deep copy of ``content`` changed in place by ``change``."""
    copy = pickle.loads(pickle.dumps(content))
    change(copy)
    return copy


def refused(code: int, output: str, *says: str) -> None:
    assert code == 1, output
    assert "internal error" not in output and "Traceback" not in output, output
    assert "weights_only" not in output, output
    for text in says:
        assert text in output, output


def _set(path: tuple, value: Any) -> Callable[[dict], None]:
    def change(content: dict) -> None:
        target = content
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


def _drop(key: str) -> Callable[[dict], None]:
    return lambda content: content.pop(key)


# The variants of the issue: what is changed, and what the refusal must say.
WEIGHT = "nets.eps.body.0.weight"
VARIANTS = {
    "string format_version": (
        _set(("format_version",), "2"),
        "field 'format_version' must be 1 or 2, got '2'",
    ),
    "list model": (_set(("model",), [1, 2]), "field 'model' must be a dict of named tensors"),
    "step abc": (_set(("step",), "abc"), "field 'step' must be a non-negative integer, got 'abc'"),
    "step -5": (_set(("step",), -5), "field 'step' must be a non-negative integer"),
    "torch rng size": (
        _set(("rng", "torch"), torch.zeros(100, dtype=torch.uint8)),
        "field 'rng.torch' must be a tensor of shape (5056,), got a uint8 tensor of shape (100,)",
    ),
    "numpy rng size": (
        _set(("rng", "numpy", "keys"), torch.zeros(10, dtype=torch.int64)),
        "field 'rng.numpy.keys' must be a tensor of shape (624,)",
    ),
    "python rng size": (
        _set(("rng", "python", 1), [1, 2, 3]),
        "field 'rng.python[1]' must be a list of 625 integers, got a list of 3 items",
    ),
    "torch rng content": (
        _set(("rng", "torch"), torch.zeros(5056, dtype=torch.uint8)),
        "field 'rng.torch' is not a valid torch generator state",
    ),
    "optimizer moment": (
        _set(("optimizer", "state", 0, "exp_avg"), "abc"),
        "field 'optimizer.state[0].exp_avg' must be a tensor, got 'abc'",
    ),
    "optimizer groups": (
        _set(("optimizer", "param_groups"), {"lr": 1}),
        "field 'optimizer.param_groups' must be a non-empty list, got a dict of 1 entry",
    ),
    "nan weights": (
        _set(("model", WEIGHT), torch.full((128, 66), math.nan)),
        f"field 'model['{WEIGHT}']' holds 8448 NaN or infinite values",
    ),
    "missing field": (_drop("step"), "field 'step' is missing"),
    "extra junk": (_set(("junk",), {"a": 1}), "field 'junk' is unknown"),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("name", COMMANDS)
def test_a_hostile_checkpoint_is_refused_naming_the_field(
    trained: dict, variant: str, name: str, tmp_path: Path
) -> None:
    change, says = VARIANTS[variant]
    run = trained["denoising"]
    checkpoint = write(edited(run["content"], change), tmp_path)
    code, output = command(name, run["program"], checkpoint, tmp_path)
    refused(code, output, f"checkpoint {checkpoint}: {says}")


@pytest.mark.parametrize("kind", ["masking", "tb"])
@pytest.mark.parametrize("name", COMMANDS)
def test_nan_weights_and_a_bad_optimizer_of_other_objectives(
    trained: dict, kind: str, name: str, tmp_path: Path
) -> None:
    run = trained[kind]
    weight = next(k for k in run["content"]["model"] if k.startswith("nets."))
    shape = run["content"]["model"][weight].shape
    nan = edited(run["content"], _set(("model", weight), torch.full(shape, math.nan)))
    refused(*command(name, run["program"], write(nan, tmp_path / "a"), tmp_path),
            f"field 'model['{weight}']' holds")  # fmt: skip
    bad = edited(run["content"], _set(("optimizer", "state", 0, "step"), torch.tensor(-1.0)))
    refused(*command(name, run["program"], write(bad, tmp_path / "b"), tmp_path),
            "field 'optimizer.state[0].step' must be a whole number ≥ 0")  # fmt: skip


def test_what_only_resuming_reads_is_checked_when_resuming(trained: dict, tmp_path: Path) -> None:
    """An optimizer of another kind (amsgrad) fits sampling, not resuming; so do the groups."""
    run = trained["tb"]
    amsgrad = edited(run["content"], _set(("optimizer", "param_groups", 1, "amsgrad"), True))
    checkpoint = write(amsgrad, tmp_path)
    assert command("sample", run["program"], checkpoint, tmp_path)[0] == 0
    refused(*command("resume", run["program"], checkpoint, tmp_path),
            "field 'optimizer.param_groups[1].amsgrad' must be False, got True")  # fmt: skip
    one = edited(run["content"], lambda c: c["optimizer"]["param_groups"][0]["params"].append(
        c["optimizer"]["param_groups"].pop(1)["params"][0]))  # fmt: skip
    refused(*command("resume", run["program"], write(one, tmp_path / "one"), tmp_path),
            "field 'optimizer.param_groups' has 1 group, this model's optimizer 2")  # fmt: skip


def test_step_beyond_the_runs_steps_and_ema_that_does_not_fit(trained: dict, tmp_path: Path):
    content = trained["denoising"]["content"]
    program = trained["denoising"]["program"]
    far = edited(content, _set(("step",), 7))
    refused(*command("sample", program, write(far, tmp_path / "a"), tmp_path),
            "field 'step' (7) is beyond train_options.steps (2)")  # fmt: skip
    wrong = edited(content, _set(("ema", WEIGHT), torch.zeros(3)))
    refused(*command("sample", program, write(wrong, tmp_path / "b"), tmp_path),
            f"field 'ema['{WEIGHT}']' must be like model['{WEIGHT}']")  # fmt: skip


def test_the_programs_tables_are_never_restored(trained: dict, tmp_path: Path) -> None:
    """The schedule tables are compiled from the program (issue 19): a checkpoint does not hold
    them, and a table in one (a file written before they were left out, or edited) is ignored:
    the samples are those of the program's tables, not a negative noise level's."""
    run = trained["masking"]
    content, model = run["content"], run["model"]
    tables = [k for k in model.state_dict() if k not in content["model"]]
    params = {k for k, _ in model.named_parameters()}
    assert tables and not params & set(tables)
    assert set(content["model"]) == params  # masking keeps no training state in buffers
    clean = write(content, tmp_path / "clean")
    assert command("sample", run["program"], clean, tmp_path)[0] == 0
    expected = np.load(tmp_path / "s.npy")
    bogus = {k: -(v.abs() + 1) for k, v in model.state_dict().items() if k in tables}
    bad = edited(content, lambda c: c["model"].update(bogus))
    assert command("sample", run["program"], write(bad, tmp_path / "bad"), tmp_path)[0] == 0
    assert np.array_equal(np.load(tmp_path / "s.npy"), expected)
    # --init takes the parent's nets only
    assert command("init", run["program"], write(bad, tmp_path / "init"), tmp_path)[0] == 0


def test_weights_that_overflow_write_no_nan_samples(trained: dict, tmp_path: Path) -> None:
    """Finite weights may still sample NaN (they overflow): nothing is written, exit 1."""
    run = trained["denoising"]
    huge = edited(run["content"], _set(("model", WEIGHT), torch.full((128, 66), 3e38)))
    huge["ema"][WEIGHT] = huge["model"][WEIGHT]
    code, output = command("sample", run["program"], write(huge, tmp_path), tmp_path)
    refused(code, output, "NaN or infinite value", "nothing was written")
    assert not (tmp_path / "s.npy").exists()


def test_a_folder_is_said_to_be_one(trained: dict, tmp_path: Path) -> None:
    run = trained["denoising"]
    checkpoint = write(run["content"], tmp_path)
    folder = checkpoint.parent
    for name in ("sample", "eval"):
        code, output = cli(name, run["program"], "--checkpoint", folder, "-n", 4)
        refused(code, output, f"checkpoint {folder} is a folder, not a checkpoint file",
                f"did you mean {checkpoint}?")  # fmt: skip
    with pytest.raises(DtgRuntimeError, match="is a folder") as caught:
        load_checkpoint(tmp_path)
    assert "holds no checkpoint.pt" in caught.value.format()
    # --init DIR and --resume into a folder whose checkpoint.pt is a folder: not a crash
    (tmp_path / "odd" / "checkpoint.pt").mkdir(parents=True)
    for argv in (
        ("--init", folder, "--out", tmp_path / "i"),
        ("--resume", "--out", tmp_path / "odd"),
    ):
        code, output = cli("train", run["program"], *argv, "--steps", 3, "--no-progress")
        assert code in (1, 2) and "Traceback" not in output, output
    model = run["model"]
    with pytest.raises(DtgRuntimeError, match="is a folder, not a checkpoint file"):
        train(model, steps=3, out=tmp_path / "odd", resume=True, progress=False)


class Payload:
    """Creates a file when unpickled."""

    def __init__(self, sentinel: Path) -> None:
        self.sentinel = sentinel

    def __reduce__(self):
        return (exec, (f"open({str(self.sentinel)!r}, 'w').close()",))


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("name", COMMANDS)
def test_a_pickle_of_objects_is_refused_in_dtgs_words(
    trained: dict, name: str, tmp_path: Path
) -> None:
    """Never torch's advice to load the file with ``weights_only=False``."""
    run = trained["denoising"]
    sentinel = tmp_path / "sentinel"
    checkpoint = write({**run["content"], "model": Payload(sentinel)}, tmp_path)
    code, output = command(name, run["program"], checkpoint, tmp_path)
    refused(code, output, "corrupted, truncated or not a dtg checkpoint (nothing in it was run)",
            "it holds Python objects (exec)")  # fmt: skip
    assert "add_safe_globals" not in output and "trust" not in output
    assert not sentinel.exists()


def test_format_versions(trained: dict, tmp_path: Path) -> None:
    run = trained["denoising"]
    assert run["content"]["format_version"] == FORMAT_VERSION == 2
    newer = edited(run["content"], _set(("format_version",), 3))
    refused(*command("sample", run["program"], write(newer, tmp_path / "new"), tmp_path),
            "field 'format_version' is 3, newer than this dtg reads (2)", "upgrade dtg")  # fmt: skip
    # A version-1 checkpoint (no program_sha256) is read, the program's identity unknown.
    old = edited(run["content"], _drop("program_sha256"))
    old.pop("program")
    old["format_version"] = 1
    checkpoint = write(old, tmp_path / "old")
    assert load_checkpoint(checkpoint)["program_sha256"] is None
    for name in COMMANDS:
        code, output = command(name, run["program"], checkpoint, tmp_path)
        assert code == 0, output
    resumed = load_checkpoint(checkpoint)  # resuming rewrote it in format 2
    assert resumed["format_version"] == 2 and resumed["step"] == 3
    assert resumed["program_sha256"] == run["content"]["program_sha256"]


def test_program_sha256_follows_the_model_not_its_layout(trained: dict) -> None:
    text = (EXAMPLES / "ddpm_moons.dtg").read_text()
    digest = trained["denoising"]["content"]["program_sha256"]
    assert digest == program_sha256(dtg.loads(text).model())
    relaid = "# a new comment\n" + text.replace("objective denoising(weight = simple)",
                                                 "objective   denoising( weight=simple )  # same")  # fmt: skip
    assert relaid != text and program_sha256(dtg.loads(relaid).model()) == digest
    more_steps = text.replace("steps = 4000", "steps = 10")  # train options are not the model
    assert program_sha256(dtg.loads(more_steps).model()) == digest
    for change in [("hidden = [128, 128, 128]", "hidden = [128, 128]"), ("0.999)", "0.99)"),
                   ("weight = simple", "weight = elbo")]:  # fmt: skip
        assert change[0] in text
        assert program_sha256(dtg.loads(text.replace(*change)).model()) != digest


def test_the_trained_checkpoints_pass_and_sample(trained: dict, tmp_path: Path) -> None:
    """The schema refuses nothing dtg writes: each model samples finite values from its own."""
    for run in trained.values():
        checkpoint = write(run["content"], tmp_path / run["program"].stem)
        code, output = command("sample", run["program"], checkpoint, tmp_path)
        assert code == 0, output
        samples = np.load(tmp_path / "s.npy")
        assert samples.shape[0] == 4 and np.isfinite(samples.astype(float)).all()

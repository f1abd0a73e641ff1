"""Train options through every route: ``train { }``, ``--set``, the flags, resume; and refusals.

Issue 18: ``--set steps=… lr=… batch=… seed=…`` was silently ignored (the flags' ``None``
defaults overwrote it). Each option of ``TRAIN_OPTIONS`` is given a value different from its
default and from the other routes, and the checkpoint's recorded options (which the loop uses)
and the number of steps actually run are compared with what was asked.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from dtg.cli import main
from dtg.ir.options import TRAIN_OPTIONS
from dtg.runtime.checkpoint import load_checkpoint

MODEL = """model tiny {{
  data x : real[2] ~ moons(n = 256)
  steps T = 4
  schedule beta(t) = 0.1
  net eps : (real[2], time) -> real[2] = mlp(hidden = [8])
  destroy x[t] ~ Normal(sqrt(1 - beta(t)) * x[t-1], sqrt(beta(t)))
  generate x[T] ~ Normal(0, 1)
  generate x[t-1] ~ Guess(x[t], eps)
  objective denoising
  {train}
}}
"""

#: Three values per option: in the train block, by --set, by a flag; none is the default.
BLOCK = {
    "steps": 3,
    "batch": 8,
    "lr": 0.01,
    "seed": 5,
    "grad_clip": 0.5,
    "checkpoint_every": 2,
    "log_every": 2,
    "warmup": 1,
    "ema": 0.5,
    "shards": 2,
    "eval_every": 2,
    "eval_examples": 16,
    "eval_levels": 2,
    "keep_best": True,
    "train_size": 100,
    "precision": "bf16",
    "compile": True,
}
SET = {
    "steps": 4,
    "batch": 12,
    "lr": 0.02,
    "seed": 6,
    "grad_clip": 0.25,
    "checkpoint_every": 3,
    "log_every": 3,
    "warmup": 2,
    "ema": 0.25,
    "shards": 3,
    "eval_every": 3,
    "eval_examples": 20,
    "eval_levels": 3,
    "keep_best": True,
    "train_size": 120,
    "precision": "fp16",
    "compile": True,
}
FLAG = {"steps": 2, "batch": 6, "lr": 0.03, "seed": 7}  # fmt: skip


@pytest.fixture(autouse=True)
def no_compiling():
    """``compile = true`` is among the options these tests pass around; what it does is
    tests/test_precision.py's. Dynamo disabled keeps each run here from compiling (~15 s)."""
    with torch._dynamo.config.patch(disable=True):
        yield


def test_the_tables_cover_every_option_with_non_default_values() -> None:
    for values in (BLOCK, SET):
        assert values.keys() == TRAIN_OPTIONS.keys()
        assert all(values[key] != TRAIN_OPTIONS[key].default for key in values)


def shown(value: float | bool) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def write(folder: Path, train: dict[str, float] | None) -> str:
    items = ", ".join(f"{k} = {shown(v)}" for k, v in (train or {}).items())
    block = "train { " + items + " }" if train else ""
    path = folder / "tiny.dtg"
    path.write_text(MODEL.format(train=block))
    return str(path)


def run(folder: Path, *argv: str) -> int:
    return main(["train", *argv, "--out", str(folder / "run"), "--no-progress"])


def recorded(folder: Path) -> dict:
    content = load_checkpoint(folder / "run" / "checkpoint.pt", torch.device("cpu"))
    return content["train_options"] | {"step": content["step"]}


def sets(values: dict[str, float]) -> list[str]:
    return [item for key, value in values.items() for item in ("--set", f"{key}={shown(value)}")]


def flags(values: dict[str, float]) -> list[str]:
    return [item for key, value in values.items() for item in (f"--{key}", str(value))]


def test_the_train_block_alone(tmp_path: Path, one_thread: None) -> None:
    assert run(tmp_path, write(tmp_path, BLOCK)) == 0
    options = recorded(tmp_path)
    assert {key: options[key] for key in BLOCK} == BLOCK
    assert options["step"] == BLOCK["steps"]


def test_set_beats_the_train_block_for_every_option(tmp_path: Path, one_thread: None) -> None:
    assert run(tmp_path, write(tmp_path, BLOCK), *sets(SET)) == 0
    options = recorded(tmp_path)
    assert {key: options[key] for key in SET} == SET
    assert options["step"] == SET["steps"]


def test_flags_beat_set_and_the_block(tmp_path: Path, one_thread: None) -> None:
    rest = {key: value for key, value in SET.items() if key not in FLAG}
    rest["shards"] = 2  # divides the flag's batch of 6
    assert run(tmp_path, write(tmp_path, BLOCK), *sets(rest), *flags(FLAG)) == 0
    options = recorded(tmp_path)
    assert {key: options[key] for key in BLOCK} == {**rest, **FLAG}
    assert options["step"] == FLAG["steps"]


def test_set_applies_without_a_train_block(tmp_path: Path, one_thread: None) -> None:
    assert run(tmp_path, write(tmp_path, None), *sets(SET)) == 0
    options = recorded(tmp_path)
    assert {key: options[key] for key in SET} == SET


def test_resume_keeps_the_checkpoint_options_and_takes_new_ones(
    tmp_path: Path, one_thread: None
) -> None:
    file = write(tmp_path, None)
    assert run(tmp_path, file, *sets(SET)) == 0
    assert run(tmp_path, file, "--resume", "--set", "steps=6", "--set", "log_every=5") == 0
    options = recorded(tmp_path)
    assert options["step"] == 6 and options["log_every"] == 5
    assert {key: options[key] for key in ("batch", "lr", "seed", "ema")} == {
        key: SET[key] for key in ("batch", "lr", "seed", "ema")
    }


def test_keywords_beat_overrides_in_python(tmp_path: Path, one_thread: None) -> None:
    import dtg

    model = dtg.load(write(tmp_path, None)).compile()
    run_ = dtg.train(
        model, steps=2, overrides={"steps": 5, "batch": 4}, out=tmp_path / "r", progress=False
    )
    assert run_.step == 2 and run_.options["steps"] == 2 and run_.options["batch"] == 4


def test_a_flag_and_a_set_that_disagree_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert run(tmp_path, write(tmp_path, None), "--steps", "3", "--set", "steps=4") == 2
    error = capsys.readouterr().err
    assert "--steps 3 and --set steps=4 disagree" in error
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--nproc", "0"], "--nproc must be a whole number of processes ≥ 1, got 0"),
        (["--nproc", "-1"], "--nproc must be a whole number of processes ≥ 1, got -1"),
        (["--steps", str(2**63)], "below 2^63"),
        (["--steps", "1" + "0" * 400], "below 2^63, got 1000"),
        (["--set", "steps=" + "9" * 5000], "(5000 characters)"),
        (["--set", "batch=1e999"], "must be a finite number"),
        (["--seed", "-1"], "must be ≥ 0"),
        (["--lr", "1e38"], "must be ≤ 1e+06"),  # Adam's update overflowed float32: exit 3
        (["--set", "grad_clip=" + "9" * 400], "must be a finite number"),
    ],
)
def test_out_of_range_counts_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture, argv: list[str], expected: str
) -> None:
    assert run(tmp_path, write(tmp_path, None), *argv) == 2
    error = capsys.readouterr().err
    assert expected in error and "Traceback" not in error
    assert len(error) < 300  # a 5,000-digit value is not echoed whole


def test_a_fresh_run_into_a_trained_folder_needs_resume_or_force(
    tmp_path: Path, capsys: pytest.CaptureFixture, one_thread: None
) -> None:
    file = write(tmp_path, {"steps": 2, "batch": 8})
    assert run(tmp_path, file) == 0
    checkpoint = tmp_path / "run" / "checkpoint.pt"
    before = checkpoint.read_bytes()
    capsys.readouterr()
    assert run(tmp_path, file, "--steps", "1") == 2
    error = capsys.readouterr().err
    assert "already holds a checkpoint" in error and "--resume" in error and "--force" in error
    assert checkpoint.read_bytes() == before  # untouched
    assert run(tmp_path, file, "--steps", "1", "--force") == 0
    assert recorded(tmp_path)["step"] == 1  # a new run of one step replaced it


def test_python_train_refuses_a_trained_folder_too(tmp_path: Path, one_thread: None) -> None:
    import dtg

    model = dtg.load(write(tmp_path, {"steps": 1, "batch": 4})).compile()
    dtg.train(model, out=tmp_path / "r", progress=False)
    with pytest.raises(dtg.DtgRuntimeError, match="already holds a checkpoint"):
        dtg.train(model, out=tmp_path / "r", progress=False)
    assert dtg.train(model, out=tmp_path / "r", progress=False, force=True).step == 1

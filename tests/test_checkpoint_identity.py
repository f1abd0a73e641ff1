"""Checkpoint identity (issue 19): a checkpoint is used only with the model it belongs to.

Two models of identical tensor shapes but different schedules and names share a file; before
issue 19 a checkpoint of one loaded silently into the other (``dtg eval`` then reported the old
schedule under the new model's name), a checkpoint of another T listed its tensor differences
instead of saying so, and any edit of the file (a comment) printed "file changed". Now:

- another model: refused by sample, eval and resume, naming both (``--init`` is the way in);
- the same model whose program changed: refused saying what changed, unless ``--force``;
- a comment, the layout, the train options or another model of the file: no note at all;
- ``--init`` from a parent's checkpoint fine-tunes the child.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import pytest
import torch

import dtg
import dtg.cli
from dtg.errors import DtgRuntimeError
from dtg.runtime import load_checkpoint, restore_model

MODEL = """
model NAME {
  data x : real[2] ~ moons(noise = 0.05)
  steps T = 10
  schedule beta(t) = BETA
  net eps : (real[2], time) -> real[2] = mlp(hidden = [16])
  destroy  x[t]   ~ Normal(sqrt(1 - beta(t)) * x[t-1], sqrt(beta(t)))
  generate x[T]   ~ Normal(0, 1)
  generate x[t-1] ~ Guess(x[t], eps)
  objective denoising
  train { steps = 2, batch = 8 }
}
"""
LINEAR, STEEP = "0.01 + 0.1 * t / T", "0.02 + 0.2 * t / T"
CHILD = """
model tuned extends lin {
  reward r(x) = -sum(x^2)
  objective relative_trajectory_balance
  train { steps = 1, batch = 4 }
}
"""


def model_text(name: str, beta: str) -> str:
    return MODEL.replace("NAME", name).replace("BETA", beta)


TWO = model_text("lin", LINEAR) + model_text("steep", STEEP)


def cli(*argv: object) -> tuple[int, str]:
    """``dtg ARGV`` in process: the exit status and everything it printed."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
        code = dtg.cli.main([str(a) for a in argv])
    return code, printed.getvalue()


def refused(result: tuple[int, str], *says: str) -> str:
    code, output = result
    assert code == 1 and "Traceback" not in output and "internal error" not in output, output
    for text in says:
        assert text in output, output
    return output


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``lin`` of :data:`TWO` trained 2 steps; returns its run folder."""
    folder = tmp_path_factory.mktemp("identity")
    (folder / "two.dtg").write_text(TWO)
    code, output = cli("train", folder / "two.dtg", "--model", "lin", "--out", folder / "lin",
                       "--no-progress")  # fmt: skip
    assert code == 0, output
    return folder / "lin"


def copy_run(run: Path, to: Path) -> Path:
    """A copy of the run folder (resuming writes into it)."""
    to.mkdir(parents=True)
    (to / "checkpoint.pt").write_bytes((run / "checkpoint.pt").read_bytes())
    return to


def test_another_model_of_the_same_shapes_is_refused_naming_both(run: Path, tmp_path) -> None:
    program, checkpoint = run.parent / "two.dtg", run / "checkpoint.pt"
    says = ("checkpoint", "is of model 'lin', not of model 'steep'", "--init")
    for name in ("sample", "eval"):
        refused(cli(name, program, "--model", "steep", "--checkpoint", checkpoint, "-n", 8), *says)
        # --force is for a changed program, not for another model
        refused(cli(name, program, "--model", "steep", "--checkpoint", checkpoint, "-n", 8,
                    "--force"), *says)  # fmt: skip
    folder = copy_run(run, tmp_path / "resume")
    before = (folder / "checkpoint.pt").read_bytes()
    refused(cli("train", program, "--model", "steep", "--out", folder, "--resume", "--steps", 3,
                "--no-progress"), *says)  # fmt: skip
    assert (folder / "checkpoint.pt").read_bytes() == before
    # The Python API refuses it too, and leaves the model as it was.
    model = dtg.loads(TWO).compile("cpu", model="steep")
    state = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(DtgRuntimeError, match="is of model 'lin', not of model 'steep'"):
        restore_model(model, load_checkpoint(checkpoint))
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())


def test_a_checkpoint_holds_no_tables_and_restoring_keeps_the_programs(run: Path) -> None:
    """The schedule and posterior tables are the program's: the checkpoint holds the weights only
    (denoising keeps its loss history, training state), and a restored model's tables are the
    ones compiled from its own program, computed here from the schedule by hand."""
    content = load_checkpoint(run / "checkpoint.pt")
    model = dtg.loads(TWO).compile("cpu", model="lin")
    params = {k for k, _ in model.named_parameters()}
    assert set(content["model"]) - params == {"objective.history", "objective.history_count"}
    restore_model(model, content)
    t = torch.arange(1, 11, dtype=torch.float64)
    beta = 0.01 + 0.1 * t / 10
    assert torch.allclose(model.destroy.s[1:].double(), beta.sqrt(), rtol=1e-6)


def test_an_edited_schedule_is_refused_saying_what_changed(run: Path, tmp_path: Path) -> None:
    edited = tmp_path / "two.dtg"
    edited.write_text(TWO.replace(LINEAR, "0.015 + 0.1 * t / T", 1))
    checkpoint = run / "checkpoint.pt"
    what = (
        "is of an earlier version of model 'lin': its program differs: "
        "'schedule beta(t) = 0.01 + 0.1 * t / T' is now 'schedule beta(t) = 0.015 + 0.1 * t / T'"
    )
    for name in ("sample", "eval"):
        refused(cli(name, edited, "--model", "lin", "--checkpoint", checkpoint, "-n", 8,
                    "-o" if name == "sample" else "--json", *(
                        [tmp_path / "s.npy"] if name == "sample" else [])), what, "--force")  # fmt: skip
    code, output = cli("sample", edited, "--model", "lin", "--checkpoint", checkpoint, "-n", 8,
                       "-o", tmp_path / "s.npy", "--force")  # fmt: skip
    assert code == 0 and f"dtg: note: checkpoint {checkpoint} {what}" in output, output
    folder = copy_run(run, tmp_path / "resume")
    refused(cli("train", edited, "--model", "lin", "--out", folder, "--resume", "--steps", 3,
                "--no-progress"), what)  # fmt: skip
    code, output = cli("train", edited, "--model", "lin", "--out", folder, "--resume",
                       "--steps", 3, "--no-progress", "--force")  # fmt: skip
    assert code == 0 and "trained steps 3-3" in output, output
    # The resumed checkpoint is of the edited program: it samples without --force.
    assert cli("sample", edited, "--model", "lin", "--checkpoint", folder / "checkpoint.pt",
               "-n", 8, "-o", tmp_path / "s.npy")[0] == 0  # fmt: skip


def test_another_t_leads_with_the_cause(run: Path, tmp_path: Path) -> None:
    edited = tmp_path / "two.dtg"
    edited.write_text(TWO.replace("steps T = 10", "steps T = 12", 1))
    argv = ["sample", edited, "--model", "lin", "--checkpoint", run / "checkpoint.pt", "-n", 8,
            "-o", tmp_path / "s.npy"]  # fmt: skip
    output = refused(cli(*argv), "its program differs: 'steps T = 10' is now 'steps T = 12'")
    assert "shape of" not in output  # the cause, not the tensors
    # Forced, the loss history (T + 1 rows) no longer fits: the message still leads with T.
    output = refused(cli(*argv, "--force"), "does not fit model 'lin': its program differs: "
                     "'steps T = 10' is now 'steps T = 12'")  # fmt: skip
    assert "shape of objective.history: checkpoint (11," in output


def test_another_net_width_lists_a_few_differences_after_the_cause(run: Path, tmp_path) -> None:
    edited = tmp_path / "two.dtg"
    edited.write_text(TWO.replace("hidden = [16]", "hidden = [16, 16]", 1))
    argv = ["sample", edited, "--model", "lin", "--checkpoint", run / "checkpoint.pt", "-n", 8,
            "-o", tmp_path / "s.npy", "--force"]  # fmt: skip
    output = refused(cli(*argv), "does not fit model 'lin': its program differs: "
                     "'net eps: (real[2], time) -> real[2] = mlp(hidden=[16])")  # fmt: skip
    assert "is now 'net eps: (real[2], time) -> real[2] = mlp(hidden=[16, 16])" in output
    # 4 differences (2 missing weights, 2 of other shapes): 3 listed, then "… and 1 more"
    assert output.count("\n  = ") == 4 and output.endswith("= … and 1 more\n"), output


def test_a_comment_or_another_model_edited_is_no_change(run: Path, tmp_path: Path) -> None:
    """The note fired on any edit of the file; now only when the model itself changed."""
    edited = tmp_path / "two.dtg"
    text = "# a comment\n" + TWO.replace("model steep {", "model steep {  # edited")
    text = text.replace(STEEP, "0.03 + 0.2 * t / T")  # the other model's schedule
    text = text.replace("steps = 2, batch = 8", "steps = 5, batch = 8", 1)  # train options
    edited.write_text(text)
    checkpoint = run / "checkpoint.pt"
    for name in ("sample", "eval"):
        code, output = cli(name, edited, "--model", "lin", "--checkpoint", checkpoint, "-n", 8,
                           "-o" if name == "sample" else "--json",
                           *([tmp_path / "s.npy"] if name == "sample" else []))  # fmt: skip
        assert code == 0 and "note" not in output and "changed" not in output, output
    folder = copy_run(run, tmp_path / "resume")
    code, output = cli("train", edited, "--model", "lin", "--out", folder, "--resume",
                       "--steps", 5, "--no-progress")  # fmt: skip
    assert code == 0 and "trained steps 3-5" in output, output


def test_init_from_the_parent_fine_tunes_the_child(run: Path, tmp_path: Path) -> None:
    """``--init`` is the explicit way to start from another model's checkpoint."""
    program = tmp_path / "family.dtg"
    program.write_text(TWO + CHILD)
    checkpoint = run / "checkpoint.pt"
    refused(cli("sample", program, "--model", "tuned", "--checkpoint", checkpoint, "-n", 8),
            "is of model 'lin', not of model 'tuned'")  # fmt: skip
    code, output = cli("train", program, "--model", "tuned", "--init", checkpoint, "--out",
                       tmp_path / "tuned", "--no-progress")  # fmt: skip
    assert code == 0 and f"initialised from {checkpoint}" in output, output
    parent = load_checkpoint(checkpoint)["model"]
    child = dtg.load(program).compile("cpu", model="tuned")
    child.init_from_parent(parent)
    for key, value in child.prior.state_dict().items():  # the frozen prior is the parent
        if key.startswith("nets."):
            assert torch.equal(value, parent[key]), key
    code, output = cli("sample", program, "--model", "tuned", "--checkpoint",
                       tmp_path / "tuned" / "checkpoint.pt", "-n", 8, "-o", tmp_path / "s.npy")  # fmt: skip
    assert code == 0, output
    assert np.isfinite(np.load(tmp_path / "s.npy")).all()

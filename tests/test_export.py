"""``dtg export`` (issue 24): checkpoint → safetensors → load, equal weights; a file of another
program or a foreign file is refused with a clear message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import moons_model

from dtg.cli import main
from dtg.runtime.checkpoint import effective_state, load_checkpoint

safetensors = pytest.importorskip("safetensors.torch")


@pytest.fixture
def trained(tmp_path: Path, one_thread: None) -> tuple[Path, Path]:
    path = tmp_path / "tiny.dtg"
    path.write_text(moons_model(beta="0.1", data="moons(n = 200)", train="steps = 5, ema = 0.5"))
    assert main(["train", str(path), "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    return path, tmp_path / "run" / "checkpoint.pt"


def test_export_round_trip_equals_the_checkpoint(trained, tmp_path: Path, capsys) -> None:
    path, checkpoint = trained
    out = tmp_path / "tiny.safetensors"
    assert main(["export", str(checkpoint), "-o", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    exported = safetensors.load_file(str(out))
    want = effective_state(load_checkpoint(checkpoint, torch.device("cpu")))  # EMA laid over
    assert exported.keys() == want.keys()
    assert all(torch.equal(exported[k], want[k]) for k in want)
    argv = ["eval", str(path), "--json", "-n", "50"]
    assert main([*argv, "--checkpoint", str(checkpoint)]) == 0
    from_checkpoint = json.loads(capsys.readouterr().out)
    assert main([*argv, "--checkpoint", str(out)]) == 0
    from_export = json.loads(capsys.readouterr().out)
    assert from_export["nelbo_nats"] == from_checkpoint["nelbo_nats"]


def test_an_export_of_another_program_is_refused(trained, tmp_path: Path, capsys) -> None:
    path, checkpoint = trained
    out = tmp_path / "tiny.safetensors"
    assert main(["export", str(checkpoint), "-o", str(out)]) == 0
    path.write_text(
        moons_model(beta="0.2", data="moons(n = 200)", train="steps = 5, ema = 0.5")
    )  # the program changed
    capsys.readouterr()
    assert main(["sample", str(path), "--checkpoint", str(out), "-n", "4"]) == 1
    error = capsys.readouterr().err
    assert "earlier version of model 'tiny'" in error and "Traceback" not in error


def test_a_foreign_safetensors_file_is_refused(trained, tmp_path: Path, capsys) -> None:
    path, _ = trained
    foreign = tmp_path / "foreign.safetensors"
    safetensors.save_file({"w": torch.zeros(2)}, str(foreign))
    assert main(["sample", str(path), "--checkpoint", str(foreign), "-n", "4"]) == 1
    assert "was not written by dtg export" in capsys.readouterr().err
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not a safetensors file at all")
    assert main(["sample", str(path), "--checkpoint", str(garbage), "-n", "4"]) == 1
    assert "not a readable .safetensors file" in capsys.readouterr().err


def test_export_needs_a_safetensors_name(trained, tmp_path: Path, capsys) -> None:
    _, checkpoint = trained
    assert main(["export", str(checkpoint), "-o", str(tmp_path / "w.bin")]) == 2
    assert "is a .safetensors file" in capsys.readouterr().err
    assert main(["export", str(checkpoint)]) == 0
    assert checkpoint.with_suffix(".safetensors").is_file()

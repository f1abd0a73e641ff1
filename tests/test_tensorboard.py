"""``dtg train --tensorboard DIR`` (issue 24): event files written and read back, training
unchanged by the log."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from test_heldout import compile_model

import dtg
from dtg.cli import main

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")


def test_the_log_holds_the_metrics_samples_and_source(tmp_path: Path, one_thread: None) -> None:
    model = compile_model(tmp_path, "steps = 6, eval_every = 3")
    board = tmp_path / "board"
    dtg.train(
        model, out=tmp_path / "r", progress=False, overrides={"log_every": 2}, tensorboard=board
    )
    events = event_accumulator.EventAccumulator(str(board), size_guidance={"images": 0})
    events.Reload()
    tags = events.Tags()
    assert [e.step for e in events.Scalars("train/loss")] == [2, 4, 6]
    assert [e.step for e in events.Scalars("heldout/heldout_bits")] == [3, 6]
    assert [e.step for e in events.Images("samples")] == [3, 6]
    assert "model/source/text_summary" in tags["tensors"]
    plain = compile_model(tmp_path, "steps = 6, eval_every = 3", "again")
    dtg.train(plain, out=tmp_path / "plain", progress=False, overrides={"log_every": 2})
    for p, q in zip(model.parameters(), plain.parameters(), strict=True):
        assert torch.equal(p, q)  # the log draws its samples without touching training


def test_the_cli_flag_writes_an_event_file(tmp_path: Path, one_thread: None) -> None:
    compile_model(tmp_path, "steps = 2")  # writes tiny.dtg
    board = tmp_path / "board"
    argv = ["train", str(tmp_path / "tiny.dtg"), "--out", str(tmp_path / "r"), "--no-progress"]
    assert main([*argv, "--tensorboard", str(board)]) == 0
    assert any(p.name.startswith("events.out.tfevents") for p in board.iterdir())


def test_a_resumed_run_keeps_one_event_per_step(tmp_path: Path, one_thread: None) -> None:
    board = tmp_path / "board"
    train = "steps = 6, eval_every = 2, checkpoint_every = 2"
    first = compile_model(tmp_path, train)
    options = {"log_every": 2}
    dtg.train(first, steps=4, out=tmp_path / "r", progress=False, overrides=options,
              tensorboard=board)  # fmt: skip
    again = compile_model(tmp_path, train)
    dtg.train(again, steps=6, out=tmp_path / "r", resume=True, progress=False,
              overrides=options, tensorboard=board)  # fmt: skip
    events = event_accumulator.EventAccumulator(str(board))
    events.Reload()
    assert [e.step for e in events.Scalars("train/loss")] == [2, 4, 6]
    assert [e.step for e in events.Scalars("heldout/heldout_nats")] == [2, 4, 6]

"""``run.history`` (issue 24): the metrics of a run as lists over steps, and ``.plot()``."""

from __future__ import annotations

import json
from pathlib import Path

from test_heldout import compile_model

import dtg
from dtg.runtime.history import History


def test_history_reads_the_metric_lines_and_plots(tmp_path: Path, one_thread: None) -> None:
    model = compile_model(tmp_path, "steps = 6, eval_every = 3")
    run = dtg.train(model, out=tmp_path / "r", progress=False, overrides={"log_every": 2})
    history = run.history
    lines = [json.loads(x) for x in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert history.column("loss") == (
        [r["step"] for r in lines if "loss" in r],
        [r["loss"] for r in lines if "loss" in r],
    )
    assert history.column("heldout_bits")[0] == [3, 6]
    assert len(history.loss) == 3 and "heldout_bits" in repr(history)
    figure = history.plot(tmp_path / "curve.png")
    assert (tmp_path / "curve.png").stat().st_size > 1000
    assert len(figure.axes) == 2  # the loss and, on a second axis, the held-out bits


def test_a_torn_line_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "loss": 2.0}\n{"step": 2, "lo\n[1, 2]\n{"step": 3, "loss": 1.0}\n')
    assert History(path).column("loss") == ([1, 3], [2.0, 1.0])
    assert len(History(tmp_path / "missing.jsonl")) == 0

"""A run's metrics as an object: ``run.history`` (``dtg.train(…)`` returns the run).

``History`` reads ``metrics.jsonl`` — the lines every ``log_every`` steps (``loss``, ``lr``,
``steps_per_s`` and the objective's metrics) and the held-out lines of ``eval_every`` — and
gives each figure as a list over steps, a table of records, and ``.plot()``: the training loss
against steps, and the held-out bits on a second axis when the run has them. In a notebook the
figure shows itself.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

__all__ = ["History"]


class History:
    """The metric lines of one run folder.

    :param path: ``metrics.jsonl`` (read now; torn or foreign lines are skipped).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.records: list[dict[str, Any]] = []
        if self.path.is_file():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict) and "step" in record:
                    self.records.append(record)

    def __len__(self) -> int:
        return len(self.records)

    def __repr__(self) -> str:
        names = sorted({k for r in self.records for k in r} - {"step"})
        return f"History({len(self.records)} lines of {', '.join(names) or 'nothing'})"

    def column(self, name: str) -> tuple[list[int], list[float]]:
        """:param name: a figure (``loss``, ``heldout_bits``, ``log_z`` …).
        :returns: ``(steps, values)`` of the lines that have it."""
        pairs = [(r["step"], float(r[name])) for r in self.records if name in r]
        return [p[0] for p in pairs], [p[1] for p in pairs]

    @property
    def loss(self) -> list[float]:
        """The training loss of each logged line."""
        return self.column("loss")[1]

    def plot(self, path: str | Path | None = None) -> Any:
        """Draw the loss (and held-out bits) against steps.

        :param path: also write the figure there (PNG, PDF or SVG by suffix).
        :returns: the matplotlib ``Figure``.
        """
        # matplotlib is heavy: imported only when a figure is drawn
        from matplotlib.figure import Figure

        figure = Figure(figsize=(6.0, 3.6))
        axes = figure.add_subplot()
        steps, loss = self.column("loss")
        axes.plot(steps, loss, color="tab:blue", label="training loss")
        axes.set_xlabel("step")
        axes.set_ylabel("loss")
        if any(math.isfinite(v) and abs(v) > 0 for v in loss) and min(loss, default=0) > 0:
            axes.set_yscale("log")
        held_steps, held = self.column("heldout_bits")
        if held:
            other = axes.twinx()
            other.plot(held_steps, held, color="tab:orange", marker="o", label="held-out bits")
            other.set_ylabel("held-out bits per dimension")
            figure.legend(loc="upper right", fontsize=8)
        figure.tight_layout()
        if path is not None:
            figure.savefig(path)
        return figure

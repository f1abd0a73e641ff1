"""The table and plots of a ``dtg compare`` study (:mod:`dtg.runtime.compare`).

``compare.json`` holds every run (its held-out curve included) and the per-(model, train size)
summary; ``compare.md`` the summary as a Markdown table; ``heldout_vs_steps.png`` the held-out
bits against steps (mean over seeds, one panel per training-set size) and
``heldout_vs_size.png`` the final held-out bits against training-set size (mean ± sd over seeds).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import write_atomic

__all__ = ["write_report", "markdown_table"]


def _cell(mean: float, sd: float, digits: int = 3) -> str:
    if math.isnan(mean):
        return "—"
    return f"{mean:.{digits}f}" + (f" ± {sd:.{digits}f}" if not math.isnan(sd) else "")


def markdown_table(rows: list[dict[str, Any]], full_size: int | None = None) -> str:
    """The summary rows as Markdown (train size 0 is shown as all, ``full_size`` rows)."""
    lines = [
        "| model | training examples | seeds | final held-out bits | best held-out bits "
        "| at step | train wall (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=lambda r: (r["train_size"] or math.inf, r["final_bits"])):
        size = r["train_size"] or (f"all ({full_size})" if full_size else "all")
        lines.append(
            f"| {r['model']} | {size} | {r['seeds']} | {_cell(r['final_bits'], r['final_bits_sd'])} "
            f"| {_cell(r['best_bits'], r['best_bits_sd'])} | {r['best_step']:.0f} "
            f"| {_cell(r['train_seconds'], r['train_seconds_sd'], 0)} |"
        )
    return "\n".join(lines) + "\n"


def write_report(
    out: Path, records: list[dict], rows: list[dict], full_size: int | None
) -> list[Path]:
    """Write ``compare.json``, ``compare.md`` and the two plots into ``out``.

    :returns: the paths written.
    """
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "compare.json", out / "compare.md"]
    payload = {"runs": records, "summary": rows, "full_train_size": full_size}
    write_atomic(written[0], json.dumps(payload, indent=1, default=float).encode())
    write_atomic(written[1], markdown_table(rows, full_size).encode())
    written += _plots(out, records, rows, full_size)
    return written


def _plots(out: Path, records: list[dict], rows: list[dict], full_size: int | None) -> list[Path]:
    import matplotlib  # heavy: only for the figures

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # heavy: only for the figures

    models = sorted({r["model"] for r in records})
    sizes = sorted({r["train_size"] for r in records}, key=lambda s: s or math.inf)
    colours = {m: plt.cm.tab10(i % 10) for i, m in enumerate(models)}
    figure, axes = plt.subplots(1, len(sizes), figsize=(4.2 * len(sizes), 3.6), squeeze=False)
    for axis, size in zip(axes[0], sizes, strict=True):
        for model in models:
            curves = [
                r["curve"] for r in records if r["model"] == model and r["train_size"] == size
            ]
            curves = [c for c in curves if c]
            if not curves:
                continue
            length = min(len(c) for c in curves)
            steps = [c[0] for c in curves[0][:length]]
            mean = np.mean([[c[1] for c in curve[:length]] for curve in curves], axis=0)
            axis.plot(steps, mean, label=model, color=colours[model])
        shown = size or (f"all ({full_size})" if full_size else "all")
        axis.set_title(f"{shown} training examples")
        axis.set_xlabel("step")
        axis.set_ylabel("held-out bits per dimension")
    axes[0][0].legend(fontsize=8)
    figure.tight_layout()
    steps_png = out / "heldout_vs_steps.png"
    figure.savefig(steps_png, dpi=120)
    plt.close(figure)
    figure, axis = plt.subplots(figsize=(5.2, 3.8))
    for model in models:
        mine = sorted(
            (r for r in rows if r["model"] == model), key=lambda r: r["train_size"] or math.inf
        )
        xs = [r["train_size"] or full_size or 0 for r in mine]
        sd = [0.0 if math.isnan(r["final_bits_sd"]) else r["final_bits_sd"] for r in mine]
        axis.errorbar(xs, [r["final_bits"] for r in mine], yerr=sd, marker="o", capsize=3,
                      label=model, color=colours[model])  # fmt: skip
    axis.set_xscale("log")
    axis.set_xlabel("training examples")
    axis.set_ylabel("final held-out bits per dimension")
    axis.legend(fontsize=8)
    figure.tight_layout()
    size_png = out / "heldout_vs_size.png"
    figure.savefig(size_png, dpi=120)
    plt.close(figure)
    return [steps_png, size_png]

"""The hyperschedule view: how much of each token position is destroyed at each level.

``dtg render FILE --view schedule -o schedule.png`` draws 1 − α(t, i), the probability that
position ``i`` no longer holds its data value at level ``t`` (masked under ``Mask``/``MashLast``,
redrawn under ``Shuffle``), as a heat map: levels down the rows (x[0] at the top), positions
across. The autoregressive staircase is a triangle, blocks are steps, MDLM's shared schedule
is horizontal bands. It reads the checker's tables only (no nets, no torch).

References: Fathi, Scholak and Noël 2025, Unifying Autoregressive and Diffusion-Based Sequence
Generation (arXiv 2504.06416), Fig. 1 draws hyperschedules this way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_writer
from ..ir import Family

__all__ = ["SCHEDULE_FORMATS", "destroyed_table", "schedule_problem", "draw_schedule"]

_FAMILIES = (Family.MASK, Family.SHUFFLE, Family.MASH_LAST, Family.MASH_RANDOM)

#: The file formats of the schedule view (matplotlib's).
SCHEDULE_FORMATS = ("png", "svg", "pdf")


def schedule_problem(ir: Any) -> str | None:
    """Why ``ir`` has no schedule view (``None`` when it has one)."""
    if ir.message.space.kind != "token" or ir.destroy is None:
        return "the schedule view draws token destruction (Mask, Shuffle, MashLast, MashRandom)"
    if ir.destroy.family not in _FAMILIES:
        return (
            f"the schedule view draws Mask, Shuffle, MashLast or MashRandom destruction, not "
            f"{ir.destroy.family.label}"
        )
    if ir.destroy.learned:
        return (
            "the schedule view draws a fixed schedule, and this destruction's order is learned "
            "(it depends on the data)"
        )
    return None


def destroyed_table(ir: Any) -> np.ndarray:
    """``1 − α(t, i)``: float64 ``[T + 1, L]`` (positions row-major over the message's shape).

    :raises ValueError: for a model without a schedule view (:func:`schedule_problem`).
    """
    problem = schedule_problem(ir)
    if problem:
        raise ValueError(problem)
    length, steps = ir.message.space.size, ir.steps
    if ir.destroy.family is Family.MASH_LAST:  # level t masks positions L − t … L − 1
        levels = np.arange(steps + 1)[:, None]
        return (np.arange(length)[None, :] >= length - levels).astype(np.float64)
    if ir.destroy.family is Family.MASH_RANDOM:  # t of the L positions, each equally likely
        return np.repeat(np.arange(steps + 1)[:, None] / length, length, axis=1)
    alpha = np.asarray(ir.marginals["alpha"], dtype=np.float64)
    alpha = alpha.reshape(steps + 1, -1)
    return 1.0 - np.broadcast_to(alpha, (steps + 1, length))


def draw_schedule(ir: Any, path: str | Path) -> Path:
    """Write the heat map of :func:`destroyed_table` to ``path`` (``.png``, ``.svg``, ``.pdf``).

    :returns: the path written (atomically: a reader never sees half a picture).
    :raises ValueError: for another suffix or a model without a schedule view.
    :raises DtgOutputError: when the path cannot be written (:mod:`dtg.atomic`).
    """
    # matplotlib is heavy (about 0.4 s): imported only when a picture is drawn
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in SCHEDULE_FORMATS:
        names = ", ".join("." + f for f in SCHEDULE_FORMATS)
        raise ValueError(
            f"cannot write '{path.suffix or path.name}': the schedule view's formats are {names}"
        )
    table = destroyed_table(ir)
    steps, length = table.shape[0] - 1, table.shape[1]
    height = min(8.0, 1.5 + 4.5 * (steps + 1) / max(length, steps + 1))
    figure = Figure(figsize=(6.0, max(2.5, height)))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    image = axes.imshow(
        table, cmap="Greys", vmin=0.0, vmax=1.0, aspect="auto", interpolation="nearest"
    )
    axes.set_xlabel("position i")
    axes.set_ylabel("level t")
    axes.set_title(f"{ir.name}: 1 − α(t, i), the share destroyed")
    figure.colorbar(image, ax=axes, fraction=0.05)
    figure.tight_layout()
    with atomic_writer(path, "wb") as file:
        figure.savefig(file, format=fmt, dpi=120)
    return path

"""Pictures of samples (matplotlib's Agg canvas; pyplot and the global backend are not touched).

:func:`plot_samples` picks the picture from the space: a scatter plot for 2-D real points, an
image grid for 64-value data (8×8 images: reals in [-1, 1], or tokens ``0..V-1``), and a bar chart
of frequencies for tiny token spaces (at most 64 configurations); otherwise the first two
coordinates (reals) or the frequency of each token value. With ``reference`` (held-out data or
exact target samples) the same picture of it is drawn beside.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_writer

__all__ = ["plot_samples", "picture_kind"]

_MAX_CONFIGURATIONS = 64


def picture_kind(space: Any) -> str:
    """``"scatter"``, ``"images"``, ``"histogram"`` or ``"values"`` for a space (``kind``,
    ``shape``, ``vocab``)."""
    dims = math.prod(space.shape)
    if space.kind == "token":
        if space.vocab is not None and space.vocab**dims <= _MAX_CONFIGURATIONS:
            return "histogram"
        return "images" if _image_shape(space) else "values"
    if _image_shape(space):
        return "images"
    return "scatter" if dims >= 2 else "values"


def _image_shape(space: Any) -> tuple[int, int, int] | None:
    """``(C, H, W)`` when the space is pictures: 64 values (8 × 8 digits) or ``[C, H, W]``
    with 1 (grey) or 3 (RGB) channels; else ``None``."""
    shape = tuple(space.shape)
    if len(shape) == 3 and shape[0] in (1, 3):
        return shape
    return (1, 8, 8) if math.prod(shape) == 64 else None


def _numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    x = np.asarray(x)
    return x.reshape(x.shape[0], -1)


def _mosaic(rows: np.ndarray, space: Any) -> np.ndarray:
    """Up to 64 flattened images ``[n, C·H·W]`` → a grid of 8 columns, ``[rows·(H+1) − 1,
    8·(W+1) − 1]`` (grey) or with a last axis of 3 (RGB), in ``[0, 1]``; gaps and masked or
    invalid tokens are NaN (grey) or white (RGB)."""
    channels, height, width = _image_shape(space)
    rows = rows[:64].astype(np.float64)
    if space.kind == "token":
        top = max((space.vocab or 2) - 1, 1)
        rows = np.where((rows >= 0) & (rows <= top), rows / top, np.nan)
    else:
        rows = (np.clip(rows, -1.0, 1.0) + 1.0) / 2.0
    count = len(rows)
    lines, columns = max(1, -(-count // 8)), min(8, max(count, 1))
    grid = np.full((lines * (height + 1) - 1, columns * (width + 1) - 1, channels), np.nan)
    for i, image in enumerate(rows):
        r, c = divmod(i, 8)
        block = image.reshape(channels, height, width).transpose(1, 2, 0)
        grid[
            r * (height + 1) : r * (height + 1) + height, c * (width + 1) : c * (width + 1) + width
        ] = block
    if channels == 1:
        return grid[..., 0]
    return np.where(np.isnan(grid), 1.0, grid)


def _frequencies(rows: np.ndarray, space: Any, kind: str) -> tuple[list[str], np.ndarray]:
    vocab = int(space.vocab or (int(rows.max()) + 1 if rows.size else 1))
    values = rows.astype(np.int64)
    if kind == "histogram":  # each whole configuration, in mixed radix
        valid = ((values >= 0) & (values < vocab)).all(axis=1)
        codes = (values[valid] * vocab ** np.arange(values.shape[1])[::-1]).sum(axis=1)
        counts = np.bincount(codes, minlength=vocab ** values.shape[1])
        labels = [
            ",".join(str(d) for d in np.unravel_index(i, (vocab,) * values.shape[1]))
            for i in range(len(counts))
        ]
    else:  # each token value over all positions
        flat = values.ravel()
        counts = np.bincount(flat[(flat >= 0) & (flat < vocab)], minlength=vocab)
        labels = [str(i) for i in range(vocab)]
    return labels, counts / max(values.size if kind == "values" else len(values), 1)


def _limits(panels: list[np.ndarray]) -> list[tuple[float, float]]:
    """Common square-ish axis limits of the first two coordinates (robust to a few outliers)."""
    points = np.concatenate([rows[:, :2] for rows in panels]).astype(np.float64)
    points = points[np.isfinite(points).all(axis=1)]
    if len(points) == 0:
        return [(-1.0, 1.0), (-1.0, 1.0)]
    low, high = np.percentile(points, 0.5, axis=0), np.percentile(points, 99.5, axis=0)
    centre, half = (low + high) / 2, max(float((high - low).max()) / 2 * 1.1, 1e-6)
    return [(float(c - half), float(c + half)) for c in centre]


def plot_samples(
    samples: Any,
    space: Any,
    path: str | Path,
    reference: Any | None = None,
    title: str | None = None,
) -> Path:
    """Draw samples (and a reference beside them) to an image file.

    :param samples: ``[n, *space.shape]`` tensor or array.
    :param space: the data space (``kind`` real/token, ``shape``, ``vocab``), e.g. ``ir.message.space``.
    :param path: the output file, written atomically; the format follows the suffix (``.png``,
        ``.pdf``, ``.svg``; PNG without a suffix).
    :param reference: ``[m, *space.shape]`` held-out data or exact samples, drawn beside.
    :param title: the figure's title.
    :returns: ``path``.
    :raises ValueError: for a suffix matplotlib cannot write (checked before anything is written).
    :raises DtgOutputError: when ``path`` is not a regular file or cannot be written (a read-only
        folder, a full disk): :func:`~dtg.atomic.atomic_writer`; the old picture stays.
    """
    # matplotlib is heavy (about 0.4 s): imported only when a picture is drawn
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    kind = picture_kind(space)
    panels = [("samples", _numpy(samples))]
    if reference is not None:
        panels.append(("reference", _numpy(reference)))
    if kind == "histogram" or (kind == "values" and space.kind == "token"):
        figure = Figure(figsize=(7, 4))
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        width = 0.8 / len(panels)
        for i, (name, rows) in enumerate(panels):
            labels, freq = _frequencies(rows, space, kind)
            axes.bar(
                np.arange(len(freq)) + (i - (len(panels) - 1) / 2) * width, freq, width, label=name
            )
        axes.set_xticks(np.arange(len(labels)), labels, rotation=90 if len(labels) > 16 else 0)
        axes.set_ylabel("frequency")
        axes.legend()
    else:
        figure = Figure(figsize=(4.5 * len(panels), 4.5))
        FigureCanvasAgg(figure)
        limits = _limits([rows for _, rows in panels]) if kind == "scatter" else None
        for i, (name, rows) in enumerate(panels):
            axes = figure.add_subplot(1, len(panels), i + 1)
            if kind == "images":
                axes.imshow(_mosaic(rows, space), cmap="gray", vmin=0.0, vmax=1.0)
                axes.set_axis_off()
            elif kind == "scatter":
                axes.scatter(rows[:, 0], rows[:, 1], s=2, alpha=0.5)
                axes.set_xlim(*limits[0])
                axes.set_ylim(*limits[1])
                axes.set_aspect("equal", adjustable="box")
            else:
                axes.hist(rows[:, 0], bins=60, density=True)
            note = " (first two coordinates)" if kind == "scatter" and rows.shape[1] > 2 else ""
            axes.set_title(f"{name}{note}")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    path = Path(path)
    # the format follows the suffix, as savefig(path) would do; an unknown one is its ValueError
    fmt = path.suffix[1:].lower() or None
    if fmt is not None and fmt not in figure.canvas.get_supported_filetypes():
        raise ValueError(
            f"cannot draw a picture as '.{fmt}' (formats: "
            f"{', '.join(sorted(figure.canvas.get_supported_filetypes()))})"
        )
    with atomic_writer(path, "wb") as file:  # a reader never sees half a picture
        figure.savefig(file, format=fmt, dpi=120)
    return path

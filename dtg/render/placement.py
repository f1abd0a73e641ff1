"""Where to write an edge's label so that a reader can tell its edge: on the edge, clear of others.

Each label is centred on its own (straight) edge, which passes through it; along the edge it goes
where the label's box keeps the most room from every *other* edge, from the nodes and from the
labels already placed (greedily, edge by edge). A label is never put at a crossing, where two
edges meet and its box would touch both. Lengths are in inches, as Graphviz's ``pos``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["label_size", "clearance", "place_labels", "FRACTIONS"]

#: Candidate places along an edge, as fractions of its length from the tail (the ends are left
#: to the tail's tee and the head's arrow).
FRACTIONS = np.linspace(0.2, 0.8, 25)

Point = tuple[float, float]


def label_size(text: str, fontsize: float, margin: float = 0.01) -> tuple[float, float]:
    """The box of a one-line label, in inches (Helvetica digits are about 0.56 em wide).

    :param text: the label.
    :param fontsize: points.
    :param margin: Graphviz's node margin around the text, inches.
    :returns: ``(width, height)``.
    """
    return 0.56 * fontsize * len(text) / 72 + 2 * margin, 1.2 * fontsize / 72 + 2 * margin


def clearance(
    centres: np.ndarray, half: np.ndarray, tails: np.ndarray, heads: np.ndarray
) -> np.ndarray:
    """The room between label boxes and segments: distance minus the box's reach toward it.

    :param centres: ``[k, 2]`` box centres.
    :param half: ``[2]`` half width and half height of the box.
    :param tails: ``[m, 2]`` segment starts.
    :param heads: ``[m, 2]`` segment ends.
    :returns: ``[k, m]``; negative where a segment passes through the box.
    """
    direction = heads - tails
    length2 = (direction**2).sum(1)
    rel = centres[:, None, :] - tails[None, :, :]
    along = (rel * direction[None]).sum(2) / np.where(length2 > 0, length2, 1.0)
    nearest = tails[None] + np.clip(along, 0.0, 1.0)[..., None] * direction[None]
    away = centres[:, None, :] - nearest
    distance = np.hypot(away[..., 0], away[..., 1])
    unit = away / np.where(distance > 1e-12, distance, 1.0)[..., None]
    reach = half[0] * np.abs(unit[..., 0]) + half[1] * np.abs(unit[..., 1])
    return distance - reach


def place_labels(
    edges: Sequence[tuple[Point, Point]],
    sizes: Sequence[tuple[float, float]],
    nodes: Sequence[Point] = (),
    radius: float = 0.0,
) -> list[Point]:
    """A centre for each edge's label, on that edge, as clear of everything else as it can be.

    :param edges: ``(tail, head)`` centre points of each straight edge.
    :param sizes: each label's ``(width, height)``.
    :param nodes: centres of circular nodes to keep clear of.
    :param radius: those nodes' radius.
    :returns: one centre per edge, in order (deterministic: ties go to the middle of the edge).
    """
    ends = np.asarray(edges, dtype=float).reshape(-1, 2, 2)
    circles = np.asarray(nodes, dtype=float).reshape(-1, 2)
    placed: list[np.ndarray] = []
    halves: list[np.ndarray] = []
    out: list[Point] = []
    prefer = -np.abs(FRACTIONS - 0.5) * 1e-6  # breaks ties only
    for e, (width, height) in enumerate(sizes):
        tail, head = ends[e]
        half = np.array([width / 2, height / 2])
        centres = tail[None] + FRACTIONS[:, None] * (head - tail)[None]
        room = np.full(len(centres), np.inf)
        others = np.delete(ends, e, axis=0)
        if len(others):
            room = clearance(centres, half, others[:, 0], others[:, 1]).min(1)
        if len(circles):
            gaps = np.hypot(*(centres[:, None, :] - circles[None]).transpose(2, 0, 1))
            room = np.minimum(room, (gaps - radius - half.max()).min(1))
        if placed:
            at, size = np.array(placed), np.array(halves)
            apart = np.maximum(
                np.abs(centres[:, None, 0] - at[None, :, 0]) - (half[0] + size[None, :, 0]),
                np.abs(centres[:, None, 1] - at[None, :, 1]) - (half[1] + size[None, :, 1]),
            )
            room = np.minimum(room, apart.min(1))
        best = int(np.argmax(np.round(room, 9) + prefer))
        placed.append(centres[best])
        halves.append(half)
        out.append((float(centres[best][0]), float(centres[best][1])))
    return out

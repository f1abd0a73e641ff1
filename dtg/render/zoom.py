"""The zoomed-in view for tiny discrete spaces: each node is the set of its possible messages.

For a ``token(V)[L]`` message with ``V**L <= 16`` and a fixed ``Shuffle``, ``Mask`` or ``MashLast``
destruction, every level is drawn as a cluster of its elements, and each destruction step as the
``↦`` edges between elements with their transition probabilities (positions are independent):

- Shuffle: ``keep + (1 - keep)/V`` to the same value, ``(1 - keep)/V`` to each other value;
- Mask: ``keep`` to the same value, ``1 - keep`` to ``M`` (the mask); ``M ↦ M`` surely;
- MashLast: the last unmasked position becomes ``M`` (probability 1).

A model with kernels for single levels (``destroy x[1] ~ …``) is refused, as any model the view
cannot draw (:func:`zoom_problem`): the view draws one template's transition table at every level.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from fractions import Fraction

import graphviz
import numpy as np

from ..ir import Family, ModelIR
from .names import level_name, shown_levels
from .placement import label_size, place_labels

__all__ = [
    "ZoomStep",
    "MAX_ELEMENTS",
    "MAX_DRAWN",
    "MAPS_TO",
    "zoom_problem",
    "zoom_steps",
    "zoom_digraph",
    "fraction",
]

MAX_ELEMENTS = 16  # V**L
MAX_DRAWN = 27  # (V+1)**L when the mask joins the values
MAPS_TO = "\u21a6"
MASK = "M"
_FAMILIES = (Family.SHUFFLE, Family.MASK, Family.MASH_LAST, Family.MASH_RANDOM)


@dataclass(frozen=True)
class ZoomStep:
    """One destruction step ``level-1 ↦ level`` between the shown elements.

    :param level: the target level ``t``.
    :param sources: the element labels of level ``t-1``.
    :param targets: the element labels of level ``t``.
    :param probs: ``(source, target) -> probability``, zero entries left out.
    """

    level: int
    sources: tuple[str, ...]
    targets: tuple[str, ...]
    probs: dict[tuple[str, str], float]


def zoom_problem(ir: ModelIR) -> str | None:
    """Why the zoomed-in view cannot draw this model, or ``None`` when it can.

    :param ir: the checked model.
    :returns: a one-line reason, or ``None``.
    """
    if ir.per_level:
        return (
            f"the zoomed-in view draws one destruction template for every level; {ir.name} has "
            "kernels for single levels"
        )
    space = ir.message.space
    if space.kind != "token" or ir.message.level_space != space:
        return f"the zoomed-in view needs a token(V)[L] message; {ir.name} has {space}"
    if space.vocab**space.size > MAX_ELEMENTS:
        return (
            f"the zoomed-in view needs a tiny space (V^L <= {MAX_ELEMENTS}); {ir.name} has "
            f"{space} with {space.vocab}^{space.size} messages"
        )
    masked = (space.vocab + 1) ** space.size if ir.destroy.family is not Family.SHUFFLE else 0
    if masked > MAX_DRAWN:
        return (
            f"the zoomed-in view draws at most {MAX_DRAWN} messages per level; {space} with "
            f"the mask has {masked}"
        )
    if ir.destroy.family not in _FAMILIES or ir.destroy.learned:
        return (
            f"the zoomed-in view draws fixed Shuffle, Mask, MashLast or MashRandom destruction; "
            f"{ir.name} "
            f"destroys with {ir.destroy.name}"
        )
    return None


def _label(values: tuple[int, ...], vocab: int) -> str:
    parts = [MASK if v == vocab else str(v) for v in values]
    return parts[0] if len(parts) == 1 else ("".join if vocab <= 10 else ",".join)(parts)


def _position_probs(
    family: Family, a: int, vocab: int, keep: float, redraw: float = 0.0
) -> dict[int, float]:
    if family is Family.SHUFFLE:
        return {b: (1 - keep) / vocab + (keep if a == b else 0.0) for b in range(vocab)}
    if a == vocab:  # Mask: the mask is absorbing
        return {vocab: 1.0}
    if redraw:  # a hybrid Mask: kept values are redrawn uniformly w.p. redraw
        out = {
            b: keep * redraw / vocab + (keep * (1 - redraw) if a == b else 0.0)
            for b in range(vocab)
        }
        return {**out, vocab: 1.0 - keep}
    return {a: keep, vocab: 1.0 - keep}


def _step(ir: ModelIR, t: int, source: tuple[int, ...]) -> dict[tuple[int, ...], float]:
    """The distribution of level ``t`` given one element of level ``t-1``."""
    vocab, family = ir.message.space.vocab, ir.destroy.family
    if family is Family.MASH_RANDOM:  # one unmasked position, each equally likely
        unmasked = [i for i, v in enumerate(source) if v != vocab]
        if not unmasked:
            return {tuple(source): 1.0}
        return {
            tuple(vocab if j == i else v for j, v in enumerate(source)): 1.0 / len(unmasked)
            for i in unmasked
        }
    if family is Family.MASH_LAST:
        unmasked = [i for i, v in enumerate(source) if v != vocab]
        target = list(source)
        if unmasked:
            target[unmasked[-1]] = vocab
        return {tuple(target): 1.0}
    shape = ir.message.space.shape
    keep = np.broadcast_to(ir.destroy.tables["keep"][t], shape).reshape(-1)
    redraw = np.broadcast_to(ir.destroy.tables.get("redraw", np.zeros(t + 1))[t], shape)
    redraw = redraw.reshape(-1)
    per_position = [
        _position_probs(family, a, vocab, float(keep[i]), float(redraw[i])).items()
        for i, a in enumerate(source)
    ]
    out: dict[tuple[int, ...], float] = {}
    for combo in itertools.product(*per_position):
        prob = 1.0
        for _, p in combo:
            prob *= p
        if prob > 0:
            key = tuple(b for b, _ in combo)
            out[key] = out.get(key, 0.0) + prob
    return out


def zoom_steps(ir: ModelIR) -> list[ZoomStep]:
    """The transition tables drawn by the zoomed-in view, for each shown consecutive level pair.

    :param ir: a model with a tiny discrete space (see :func:`zoom_problem`).
    :returns: one :class:`ZoomStep` per drawn step (steps hidden in an ellipsis are skipped).
    :raises ValueError: when the model cannot be zoomed.
    """
    problem = zoom_problem(ir)
    if problem:
        raise ValueError(problem)
    space = ir.message.space
    vocab, length = space.vocab, space.size
    reach: list[list[tuple[int, ...]]] = [list(itertools.product(range(vocab), repeat=length))]
    tables = []
    for t in range(1, ir.steps + 1):
        table = {src: _step(ir, t, src) for src in reach[-1]}
        found = {dst for row in table.values() for dst in row}
        reach.append(sorted(found))
        tables.append(table)
    shown = shown_levels(ir.steps)
    steps = []
    for prev, t in zip(shown, shown[1:], strict=False):
        if prev is None or t is None:
            continue
        table = tables[t - 1]
        probs = {
            (_label(s, vocab), _label(d, vocab)): p
            for s in reach[prev]
            for d, p in table[s].items()
        }
        steps.append(
            ZoomStep(
                t,
                tuple(_label(s, vocab) for s in reach[prev]),
                tuple(_label(d, vocab) for d in reach[t]),
                probs,
            )
        )
    return steps


def fraction(p: float) -> str:
    """A probability as a short fraction when it is one (``2/3``), else 3 decimals.

    :param p: the probability.
    :returns: its text.
    """
    f = Fraction(p).limit_denominator(64)
    return str(f) if abs(float(f) - p) < 1e-9 else f"{p:.3f}"


LABEL_FONT = 10  # points
NODE_RADIUS = 0.2  # inches (width 0.4)


def _spacing(n: int) -> tuple[float, float]:
    """Vertical distance between elements and horizontal distance between levels (inches):
    with ``n`` elements a step has up to ``n²`` edges, and their labels need room between them."""
    return max(1.0, 0.3 * (n + 1)), max(3.2, 0.8 * (n + 1))


def zoom_digraph(ir: ModelIR, labels: str = "letters") -> graphviz.Digraph:
    """The zoomed-in diagram: a box per level holding its elements, ``↦`` edges between them.

    Positions are pinned (``layout=neato``): element ``i`` of a level sits at height ``i·s``. The
    probability of ``i ↦ j`` is written on its own edge (the edge runs through the label), at the
    place along it that stays clearest of every other edge, node and label
    (:func:`dtg.render.placement.place_labels`), so a label never sits at a crossing.

    :param ir: a model with a tiny discrete space.
    :param labels: ``"letters"`` or ``"indexed"`` for the level captions.
    :returns: the digraph.
    :raises ValueError: when the model cannot be zoomed (see :func:`zoom_problem`).
    """
    steps = zoom_steps(ir)
    levels = shown_levels(ir.steps)
    elements = {s.level: s.targets for s in steps} | {s.level - 1: s.sources for s in steps}
    n = max(len(e) for e in elements.values())
    gap, dx = _spacing(n)
    g = graphviz.Digraph(ir.name, comment=f"dtg diagram: {ir.name} (zoom)", engine="neato")
    g.attr(layout="neato", splines="false", outputorder="edgesfirst", pad="0.2")
    g.attr(
        "node",
        shape="circle",
        fontname="Helvetica",
        fontsize="12",
        width="0.4",
        margin="0.02",
        style="filled",
        fillcolor="white",
    )
    ids: dict[tuple[int, str], str] = {}
    for col, level in enumerate(levels):
        x = col * dx
        if level is None:
            g.node(f"e{col}", "\u22ef", shape="plaintext", fontsize="20", pos=f"{x},{-gap:.3f}!")
            continue
        name = level_name(level, ir.steps, ir.steps_name, labels)
        k = len(elements[level])
        g.node(
            f"level{col}",
            f"<{name.html}>",
            shape="box",
            style="rounded",
            fixedsize="true",
            width="0.75",
            height=f"{(k - 1) * gap + 0.95:.3f}",
            labelloc="t",
            fontname="Times-Italic",
            fontsize="16",
            pos=f"{x},{-(k - 1) * gap / 2 + 0.12:.3f}!",
            tooltip=name.text,
        )
        for i, element in enumerate(elements[level]):
            ids[level, element] = f"z{level}_{i}"
            g.node(
                ids[level, element],
                element,
                tooltip=f"{name.text} = {element}",
                fillcolor="#d9d9d9" if level == 0 else "white",
                pos=f"{x},{-i * gap:.3f}!",
            )
    for col, level in enumerate(levels):
        if level is None:
            g.edge(f"z{levels[col - 1]}_0", f"e{col}", style="dotted", arrowhead="none")
            g.edge(f"e{col}", f"z{levels[col + 1]}_0", style="dotted", arrowhead="none")
    for step in steps:
        x = levels.index(step.level - 1) * dx
        pairs = list(step.probs.items())
        index = [(step.sources.index(src), step.targets.index(dst)) for (src, dst), _ in pairs]
        texts = [fraction(p) for _, p in pairs]
        spots = place_labels(
            [((x, -i * gap), (x + dx, -j * gap)) for i, j in index],
            [label_size(text, LABEL_FONT) for text in texts],
            [(x, -i * gap) for i in range(len(step.sources))]
            + [(x + dx, -j * gap) for j in range(len(step.targets))],
            NODE_RADIUS,
        )
        for ((src, dst), p), (i, j), text, (lx, ly) in zip(pairs, index, texts, spots, strict=True):
            tip = f"{src} {MAPS_TO} {dst}: {text}"
            g.edge(
                ids[step.level - 1, src],
                ids[step.level, dst],
                dir="both",
                arrowtail="tee",
                arrowhead="normal",
                arrowsize="0.6",
                penwidth=f"{0.5 + 2 * p:.2f}",
                tooltip=tip,
                comment=MAPS_TO,
            )
            g.node(
                f"p{step.level}_{i}_{j}",
                text,
                shape="plaintext",
                fontsize=str(LABEL_FONT),
                fixedsize="false",
                width="0",
                height="0",
                margin="0.01",
                style="filled",
                tooltip=tip,
                pos=f"{lx:.3f},{ly:.3f}!",
            )
    return g

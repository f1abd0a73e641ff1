"""Per-level kernels on the diagrams: which levels to draw, which channel each edge carries.

A model may give single levels kernels (and spaces) of their own (``destroy x[1] ~ …``, a
hierarchical VAE's 64 → 16 → 4); templates (``destroy x[t] ~ …``) cover the levels without one.
Such a chain has no single template step, so both views draw it level by level (the compact view
adds a note saying so), each edge labelled with the channel of its own level, and, when the levels
differ in space, a note gives each drawn level's space. This module holds that bookkeeping; the
layout itself is :mod:`dtg.render.scene`'s.
"""

from __future__ import annotations

from ..ir import Channel, Direction, ModelIR
from .names import Name, level_name, shown_levels

__all__ = [
    "COMPACT_NOTE",
    "own",
    "drawn_levels",
    "node_name",
    "space_note",
    "template_levels",
    "scope",
]

#: The compact view's note on a per-level model (plain text, also valid LaTeX text).
COMPACT_NOTE = "kernels for single levels: drawn level by level (no single template step)"


def own(channel: Channel) -> bool:
    """Whether a channel is a single level's own kernel (``destroy x[1] ~ …``), not a template.

    :param channel: a destruction or generation channel.
    :returns: ``True`` when its target is a level number (``"1"``), not ``"t"`` or ``"t-1"``.
    """
    return channel.single_level


def _own_levels(ir: ModelIR) -> set[int]:
    """The levels ``l`` whose destruction or generation step is a kernel of its own."""
    found = set()
    for level in range(1, ir.steps + 1):
        if own(ir.destroy_at(level)) or own(ir.generate_at(level)):
            found.add(level)
    return found


def drawn_levels(ir: ModelIR) -> list[int | None]:
    """The levels a per-level model's diagram draws, ``None`` marking an ellipsis.

    All levels when ``T <= 5``; else those of the unrolled view (0, 1, 2, ⋯, T-1, T) and both ends
    of every step that has a kernel of its own, so that no such kernel hides in an ellipsis.

    :param ir: the checked model.
    :returns: levels in order.
    """
    base = shown_levels(ir.steps)
    if None not in base:
        return base
    wanted = {level for level in base if level is not None}
    for level in _own_levels(ir):
        wanted |= {level - 1, level}
    out: list[int | None] = []
    for level in sorted(wanted):
        if out and out[-1] is not None and level > out[-1] + 1:
            out.append(None)
        out.append(level)
    return out


def node_name(level: int, ir: ModelIR, labels: str, prime: int = 0) -> Name:
    """The name of a drawn level; letters where they are unambiguous.

    Letters name the first 13 and the last 13 levels of a long chain (A, B, …, Y, Z); a level of
    its middle, drawn because it has a kernel of its own, is named by its index instead.

    :param level: the level.
    :param ir: the checked model.
    :param labels: ``"letters"`` or ``"indexed"``.
    :param prime: 0 data side, 1 model side, 2 frozen parent.
    :returns: the name.
    """
    steps = ir.steps
    middle = steps >= 26 and 13 <= level < steps - 12
    if labels == "letters" and middle:
        labels = "indexed"
    return level_name(level, steps, ir.steps_name, labels, prime)


def space_note(ir: ModelIR, levels: list[int | None], labels: str) -> tuple[str, str]:
    """Each drawn level's space, when the levels do not all share one (``B : real[16]``).

    :param ir: the checked model.
    :param levels: the drawn levels.
    :param labels: ``"letters"`` or ``"indexed"``.
    :returns: (plain text, LaTeX); both empty when every level has the same space.
    """
    spaces = ir.message.level_spaces
    if len(set(spaces)) <= 1:
        return "", ""
    text, tex = [], []
    for level in levels:
        if level is None:
            continue
        name, space = node_name(level, ir, labels), str(ir.message.space_at(level))
        text.append(f"{name.text} : {space}")
        tex.append(rf"${name.tex}$: \texttt{{{space}}}")
    return "   ".join(text), r", \quad ".join(tex)


def template_levels(ir: ModelIR, channel: Channel) -> list[int]:
    """The levels a template covers in a per-level model (those without a kernel of their own).

    :param ir: the checked model.
    :param channel: its destruction or generation template.
    :returns: the levels ``l`` whose step ``channel`` is.
    """
    at = ir.destroy_at if channel.direction is Direction.DESTROY else ir.generate_at
    return [level for level in range(1, ir.steps + 1) if at(level) is channel]


def scope(levels: list[int], steps: int, steps_name: str) -> tuple[str, str]:
    """The range of ``t`` a template covers, as text (``t = 2..T``, ``t = 1..T except 15``) and
    LaTeX (``t = 2, \\dots, T``).

    :param levels: the covered levels, ascending.
    :param steps: ``T``.
    :param steps_name: the name the model gives ``T``.
    :returns: (plain text, LaTeX).
    """

    def say(level: int) -> str:
        return steps_name if level == steps else str(level)

    first, last = levels[0], levels[-1]
    if first == last:
        return f"t = {say(first)}", f"t = {say(first)}"
    gaps = [level for level in range(first, last + 1) if level not in levels]
    if gaps:
        items = ", ".join(map(say, gaps))
        text = f"t = {say(first)}..{say(last)} except {items}"
        left_out = rf"t \neq {items}" if len(gaps) == 1 else rf"t \notin \{{{items}\}}"
        return text, rf"t = {say(first)}, \dots, {say(last)},\ {left_out}"
    return f"t = {say(first)}..{say(last)}", rf"t = {say(first)}, \dots, {say(last)}"

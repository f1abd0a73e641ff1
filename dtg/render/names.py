"""Names of levels on the diagrams: letters (A, B, …, Z) or indices (x₀, x₁, …, x_T).

A level is an ``int`` (``t`` in ``0..T``) in the unrolled view, or one of the template strings
``"t-1"``, ``"t"``, ``"T"`` in the compact view. Each name comes in three spellings: plain text
(for tests and tooltips), a Graphviz HTML label, and LaTeX math (for tikz-cd).
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

__all__ = ["Name", "LABEL_STYLES", "PRIMES", "level_name", "letter", "shown_levels"]

LABEL_STYLES = ("letters", "indexed")
PRIMES = ("", "\u2032", "\u2033")  # data side, model side, frozen parent
_SUBSCRIPTS = str.maketrans("0123456789-", "₀₁₂₃₄₅₆₇₈₉₋")
_TEMPLATE_LETTERS = {"t-1": "A", "t": "B", "T": "Z"}


@dataclass(frozen=True)
class Name:
    """One node name in three spellings.

    :param text: plain Unicode (``"B′"``, ``"x′₁"``, ``"x_T"``).
    :param html: a Graphviz HTML label body (without the outer ``<>``).
    :param tex: LaTeX math (``"B'"``, ``"x'_{1}"``).
    """

    text: str
    html: str
    tex: str


def letter(t: int, steps: int) -> str:
    """The letter of level ``t``: A is the data; long chains end at Z (…, Y, Z).

    :param t: the level, ``0..steps``.
    :param steps: ``T``.
    :returns: one capital letter (levels beyond the alphabet reuse the nearest end).
    """
    if steps < 26 or t < 13:
        return chr(ord("A") + min(t, 25))
    return chr(ord("Z") - min(steps - t, 12))


def _index_parts(level: int | str, steps: int, steps_name: str) -> tuple[str, str, str]:
    """The subscript of ``x`` as (unicode, html, tex)."""
    if isinstance(level, str):
        sub = level.replace("T", steps_name)
    elif level == steps and steps > 0:
        sub = steps_name
    elif level == steps - 1 and steps > 5:
        sub = f"{steps_name}-1"
    else:
        sub = str(level)
    pretty = sub.replace("-", "\u2212")
    text = "x" + (sub.translate(_SUBSCRIPTS) if sub.isdigit() else f"_{sub}")
    return text, f"x<SUB>{escape(pretty)}</SUB>", f"x_{{{sub}}}"


def level_name(level: int | str, steps: int, steps_name: str, labels: str, prime: int = 0) -> Name:
    """The name of one level on one side of the diagram.

    :param level: ``t`` (an int) or a template level ``"t-1"``, ``"t"``, ``"T"``.
    :param steps: ``T``.
    :param steps_name: the name the model gives ``T`` (usually ``"T"``).
    :param labels: ``"letters"`` or ``"indexed"``.
    :param prime: 0 for the data side, 1 for the model side (′), 2 for a frozen parent (″).
    :returns: the :class:`Name`.
    """
    mark, tex_mark = PRIMES[prime], "'" * prime
    if labels == "letters":
        base = _TEMPLATE_LETTERS[level] if isinstance(level, str) else letter(level, steps)
        return Name(base + mark, escape(base + mark), base + tex_mark)
    text, html, tex = _index_parts(level, steps, steps_name)
    if prime:
        text = "x" + mark + text[1:]
        html = "x" + mark + html[1:]
        tex = "x" + tex_mark + tex[1:]
    return Name(text, html, tex)


def shown_levels(steps: int) -> list[int | None]:
    """The levels drawn by the unrolled view: all when ``T <= 5``, else 0, 1, 2, ⋯, T-1, T.

    :param steps: ``T``.
    :returns: levels in order, ``None`` marking the ellipsis.
    """
    if steps <= 5:
        return list(range(steps + 1))
    return [0, 1, 2, None, steps - 1, steps]

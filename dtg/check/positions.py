"""Per-position keep probabilities (hyperschedules) of ``Mask`` and ``Shuffle``.

``Mask(x[t-1], keep = keep(t, i))`` gives every token position ``i`` (0-based, row-major over
the message's shape) a schedule of its own. The checker tabulates the keep at ``t = 1..T`` and
``i = 0..L-1`` in float64 (``[T + 1, L]``) and checks each entry: a value in ``[0, 1]``, named by
its level and position when it is not.

**The 0/0 convention.** Where a position is already fully destroyed before level ``t``
(``α(t-1, i) = ∏_{k<t} keep(k, i) = 0``: absorbed into ``[MASK]``, or uniform under
``Shuffle``) the destruction cannot change it, so its keep there is not needed: a keep written
as a ratio of marginals, ``alpha(t, i) / alpha(t-1, i)``, is ``0/0`` there and is accepted; the
table holds 0 (the position stays absorbed). An undefined keep where the position is still
(partly) intact is an error. Unlike a keep shared by every position, a per-position keep may be
0 before ``t = T``: that is how a staircase (autoregressive) or block hyperschedule masks a
position at the level of its choosing.

Values within float rounding (:data:`~dtg.check.exact.ROUNDING`) of 0 or 1 are taken as 0 or 1.

References: Fathi, Scholak and Noël 2025, Unifying Autoregressive and Diffusion-Based Sequence
Generation (hyperschedules, arXiv 2504.06416).
"""

from __future__ import annotations

import numpy as np
import sympy as sp
from sympy.core.function import AppliedUndef

from ..errors import DtgRangeError, Span
from ..ir import expr as ir
from . import exact, symbolic

__all__ = [
    "POSITION",
    "uses_position",
    "position_table",
    "position_keep_table",
    "redraw_table",
]

#: The name of the token position in a keep probability.
POSITION = "i"


def uses_position(node: ir.Expr) -> bool:
    """Whether a lowered expression reads the token position ``i``."""
    return any(
        isinstance(item, ir.Param) and item.kind is ir.ParamKind.POSITION for item in ir.walk(node)
    )


def position_table(expr: sp.Expr, steps: int, length: int, start: int = 1) -> np.ndarray:
    """Evaluate ``expr`` (free symbols ``t`` and ``i``) at ``t = 0..steps``, ``i = 0..length-1``.

    Entries before level ``start`` are ``nan``; so is any undefined value (``0/0`` where a
    position is already absorbed; the caller decides what that means).

    :returns: float64 ``[steps + 1, length]``.
    """
    free = expr.free_symbols - {symbolic.T_SYMBOL, symbolic.I_SYMBOL}
    if free:
        raise ValueError(f"table of an expression with free symbols {sorted(map(str, free))}")
    out = np.full((steps + 1, length), np.nan)
    if expr.atoms(AppliedUndef):  # a net or a vector: nothing numeric to tabulate
        return out
    if expr.has(sp.zoo, sp.nan, sp.oo, -sp.oo):
        return out  # undefined everywhere (a division by i - i): the caller's error names where
    levels = np.arange(start, steps + 1, dtype=np.float64)[:, None]
    positions = np.arange(length, dtype=np.float64)[None, :]
    with np.errstate(all="ignore"):
        try:
            values = np.asarray(symbolic._numeric(expr, levels, positions), dtype=np.complex128)
        except (symbolic._Unsupported, RecursionError):  # sympy evaluates each entry instead
            values = np.array(
                [[_evaluate_at(expr, t, i) for i in range(length)] for t in range(start, steps + 1)]
            )
    real = np.where(np.abs(values.imag) < 1e-12, values.real, np.nan)
    out[start:] = np.broadcast_to(real, out[start:].shape)
    return out


def _out_of_range(
    name: str, row: np.ndarray, bad: np.ndarray, t: int, shown: str, span, source: str
) -> DtgRangeError:
    """The error of a probability table's first bad entry at level ``t``, naming its position."""
    i = int(np.flatnonzero(bad)[0])
    return DtgRangeError(
        f"{name} = {row[i]:.6g} at level t = {t}, position i = {i}: it must satisfy 0 ≤ {name} ≤ 1",
        span,
        source,
        hints=[f"the {name} is {shown}"],
    )


def _evaluate_at(expr: sp.Expr, level: int, position: int) -> complex:
    try:
        return complex(expr.subs({symbolic.T_SYMBOL: level, symbolic.I_SYMBOL: position}).evalf())
    except Exception:  # noqa: BLE001 - an undefined value is reported by the range check
        return complex(np.nan)


def position_keep_table(
    keep: sp.Expr, steps: int, length: int, shown: str, span: Span | None, source: str
) -> np.ndarray:
    """The checked keep table of a per-position ``Mask``/``Shuffle``.

    :param keep: the keep as sympy, in ``t`` and ``i``.
    :param steps: ``T``. :param length: ``L``, the message's number of positions.
    :param shown: the keep as written, for messages.
    :param span: where the keep is written. :param source: the file's text.
    :returns: float64 ``[T + 1, L]`` in ``[0, 1]`` (row 0 unused, 1), 0 where a position was
        already fully destroyed.
    :raises DtgRangeError: naming the level and the position of the first bad entry.
    """
    table = position_table(keep, steps, length, start=1)
    table[0] = 1.0
    intact = np.ones(length)  # α(t-1, i)
    for t in range(1, steps + 1):
        row = table[t]
        absorbed = intact == 0.0
        undefined = ~np.isfinite(row) & ~absorbed
        if undefined.any():
            i = int(np.flatnonzero(undefined)[0])
            raise DtgRangeError(
                f"the keep probability {shown} is not a number at level t = {t}, position "
                f"i = {i} (value {row[i]})",
                span,
                source,
                hints=[
                    "a keep may be undefined (0/0) only where the position is already fully "
                    "destroyed (α(t-1, i) = 0); check for a division by zero there"
                ],
            )
        row = np.where(absorbed, 0.0, row)
        rounding = exact.ROUNDING
        row = np.where(np.abs(row) <= rounding, 0.0, row)
        row = np.where(np.abs(row - 1.0) <= rounding, 1.0, row)
        bad = (row < 0) | (row > 1)
        if bad.any():
            raise _out_of_range("keep", row, bad, t, shown, span, source)
        table[t] = row
        intact = intact * row
    return table


def redraw_table(
    redraw: sp.Expr,
    keep: np.ndarray,
    length: int,
    shown: str,
    span: Span | None,
    source: str,
) -> np.ndarray:
    """The checked ``redraw`` table of a hybrid ``Mask`` (absorbing and uniform noise).

    :param redraw: the probability that a kept position is redrawn uniformly, in ``t`` (and
        ``i``). :param keep: the checked keep table, ``[T + 1]`` or ``[T + 1, *shape]``.
    :param length: ``L``. :param shown: the redraw as written. :param span: where it is
        written. :param source: the file's text.
    :returns: float64 ``[T + 1, L]`` in ``[0, 1]`` (row 0 unused, 0; 0 where a position is
        already masked for good, the 0/0 convention of the keep).
    :raises DtgRangeError: naming the level and the position of the first bad entry.
    """
    steps = len(keep) - 1
    table = position_table(redraw, steps, length, start=1)
    table[0] = 0.0
    kept = np.broadcast_to(keep.reshape(steps + 1, -1), (steps + 1, length))
    intact = np.ones(length)
    for t in range(1, steps + 1):
        row = np.where(intact == 0.0, 0.0, table[t])
        bad = ~np.isfinite(row) | (row < -exact.ROUNDING) | (row > 1 + exact.ROUNDING)
        if bad.any():
            raise _out_of_range("redraw", row, bad, t, shown, span, source)
        table[t] = np.clip(row, 0.0, 1.0)
        intact = intact * kept[t]
    return table

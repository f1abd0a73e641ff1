"""Exact values where a check needs one: float64 gives ``cos(pi/2)^2 = 3.7e-33``, not 0.

A few checks need a parameter to *equal* a value at a level: the keep probability is 0 at
``t = T`` into an all-masked start, the destroy std is 0 at ``t = T`` into a point start, a
std is not negative, a keep is not above 1. The float64 table decides every other level. When
the float64 entry is within :data:`ROUNDING` of the value a check requires but not equal to it,
sympy evaluates the expression exactly at that level (decimals read as written: ``0.1`` is
1/10; ``pi`` is π): proven equal, the entry becomes that value; otherwise the check says that the
value is within float rounding and how to write the schedule exactly.
"""

from __future__ import annotations

import math

import sympy as sp

from .symbolic import _EXACT_POWER_LIMIT, T_SYMBOL

__all__ = ["ROUNDING", "TRIES", "near", "exactly", "value_at", "within_rounding"]

#: How far (relative to max(1, |target|)) a float64 value may be from the value a check requires
#: and still count as float rounding of it: the error of a few dozen float64 operations.
ROUNDING = 1e-12

#: At most this many levels of one table are evaluated exactly where it is optional (a schedule
#: undefined at every level, or a keep of 1 - 1e-13 everywhere, is not worth 10,000 evaluations).
TRIES = 8

#: Beyond this many nodes an expression is not simplified (sympy could take long on it).
_MAX_NODES = 2000


def near(value: float, target: float) -> bool:
    """Whether ``value`` differs from ``target`` by no more than float rounding (and differs)."""
    return (
        math.isfinite(value)
        and value != target
        and abs(value - target) <= ROUNDING * max(1.0, abs(target))
    )


def _size_at_most(expr: sp.Expr, limit: int) -> bool:
    for count, _ in enumerate(sp.preorder_traversal(expr), 1):
        if count > limit:
            return False
    return True


def _at(expr: sp.Expr, level: int) -> sp.Expr | None:
    """``expr`` at ``t = level`` with decimals as written (``0.1`` is 1/10, not its nearest
    binary fraction); ``None`` when the expression is too large to try."""
    if not _size_at_most(expr, _MAX_NODES) or _large_power(expr, level):
        return None  # t^(10^12) or t^t^t at t = 10 is an integer of 10^10 digits: not worth it
    written = {f: sp.Rational(repr(float(f))) for f in expr.atoms(sp.Float)}
    return expr.xreplace(written).subs(T_SYMBOL, level)


def _large_power(expr: sp.Expr, level: int) -> bool:
    """Whether a power in ``expr`` has an exponent beyond ±64 at ``t = level`` (sympy would
    build the exact integer); inner powers are measured first, so that ``t^t^t`` never is."""
    for power in sorted(expr.atoms(sp.Pow), key=sp.count_ops):
        try:
            exponent = complex(power.exp.evalf(15, subs={T_SYMBOL: level}))
        except Exception:  # noqa: BLE001 - an exponent sympy cannot evaluate: do not try
            return True
        if not abs(exponent) <= _EXACT_POWER_LIMIT:
            return True
    return False


def value_at(expr: sp.Expr, level: int) -> float | None:
    """The exact value of ``expr`` at ``t = level`` as a float, where float64 gave no number:
    ``sqrt(0.5 - t/10)`` at t = 5 is ``sqrt(-1.1e-16) = nan`` in float64 but exactly 0.

    :returns: the value when sympy finds a finite real number, else ``None``.
    """
    try:
        value = _at(expr, level)
        if value is None or value.free_symbols:
            return None
        number = complex(value.evalf(30))
    except Exception:  # noqa: BLE001 - sympy's failures (overflow, recursion): no value
        return None
    if number.imag != 0 or not math.isfinite(number.real):
        return None
    return number.real


def exactly(expr: sp.Expr, level: int, target: float) -> bool | None:
    """Whether ``expr`` at ``t = level`` equals ``target`` exactly.

    :param expr: a sympy expression whose only free symbol is ``t``.
    :returns: ``True`` when sympy proves it, ``False`` when sympy proves it differs, ``None``
        when sympy cannot decide (or the expression is too large to try).
    """
    try:
        value = _at(expr, level)
        if value is None or value.free_symbols:
            return None
        wanted = sp.Rational(repr(float(target)))
        same = value.equals(wanted)
    except Exception:  # noqa: BLE001 - sympy's failures (overflow, recursion) mean: cannot decide
        return None
    return None if same is None else bool(same)


def within_rounding(
    what: str, value: float, target: float, level: int, proven_other: bool | None, need: str = ""
) -> tuple[str, str]:
    """The message and hint of a value within float rounding of the one a check requires.

    :param what: the quantity as written, e.g. ``the keep probability alpha(t) / alpha(t-1)``.
    :param proven_other: ``False`` when sympy proved the value differs, ``None`` when it could
        not decide.
    :param need: why the check needs the exact value (appended after a semicolon).
    :returns: ``(message, hint)``.
    """
    why = (
        f"sympy cannot prove it is exactly {target:g}"
        if proven_other is None
        else f"it is not exactly {target:g}"
    )
    message = (
        f"{what} is {value:.2g} at level t = {level}, within float rounding of {target:g}, "
        f"but {why}" + (f"; {need}" if need else "")
    )
    hint = (
        f"write the schedule so that it is exactly {target:g} at t = {level}: sympy evaluates it "
        "exactly there, so use pi and fractions (pi/2, 1/3), not rounded decimals (1.5708, "
        "0.333), e.g. alpha(t) = cos(pi/2 * t/T)^2 is exactly 0 at t = T"
    )
    return message, hint

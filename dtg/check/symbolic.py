"""The expression algebra: AST expressions → sympy → float64 tables and LaTeX.

sympy expressions are *built from the AST* node by node; no text is ever handed to ``sympify``,
``parse_expr`` or ``eval``. Numeric tables over the levels ``t = 0..T`` come from
:func:`table`, which lambdifies a tree whose only free symbol is :data:`T_SYMBOL`.

What the algebra proves:

* a destruction ``Normal(mean, std)`` is *linear-Gaussian* when ``mean = a(t)·x[t-1]`` exactly
  (``∂mean/∂x`` is free of ``x`` and ``mean − a·x`` simplifies to 0) and ``std`` is free of ``x``
  and nets — :func:`linear_coefficient`;
* a ``keep`` of the form ``g(t)/g(t-1)`` telescopes, so the continuous-time marginal is
  ``g(t)/g(0)`` — :func:`telescoping_ratio`.

References: Ho et al. 2020 (DDPM) for the Gaussian posterior; Sahoo et al. 2024 (MDLM).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import sympy as sp
from sympy.core.function import AppliedUndef
from sympy.printing.latex import LatexPrinter

from ..ir.printer import reward_latex
from ..syntax import ast

__all__ = [
    "T_SYMBOL",
    "I_SYMBOL",
    "X_PREV",
    "X_NEXT",
    "MATH_FUNCTIONS",
    "SympyBuilder",
    "table",
    "linear_coefficient",
    "telescoping_ratio",
    "nets_in",
    "has_symbol",
    "latex",
]

#: The level variable ``t`` in every expression dtg builds.
T_SYMBOL = sp.Symbol("t", integer=True)
#: The token position ``i`` (0-based, row-major) of a per-position keep in ``Mask``/``Shuffle``.
I_SYMBOL = sp.Symbol("i", integer=True, nonnegative=True)
#: Stands for each element of ``x[t-1]`` (kernels are elementwise in the message).
X_PREV = sp.Symbol("x_{t-1}")
#: Stands for each element of ``x[t]``.
X_NEXT = sp.Symbol("x_{t}")


def _sigmoid(x: sp.Expr) -> sp.Expr:
    return 1 / (1 + sp.exp(-x))


def _softplus(x: sp.Expr) -> sp.Expr:
    return sp.log(1 + sp.exp(x))


#: Elementwise functions of the expression language and their sympy meaning.
MATH_FUNCTIONS: dict[str, Callable[[sp.Expr], sp.Expr]] = {
    "sqrt": sp.sqrt,
    "exp": sp.exp,
    "log": sp.log,
    "cos": sp.cos,
    "sin": sp.sin,
    "tanh": sp.tanh,
    "sigmoid": _sigmoid,
    "softplus": _softplus,
    "abs": sp.Abs,
    "floor": sp.floor,
}

CONSTANTS: dict[str, sp.Expr] = {"pi": sp.pi, "e": sp.E}


class SympyBuilder:
    """Read a level index of the syntax (``x[t-1]``, ``x[T]``, ``x[0]``) as sympy in ``t``.

    Only level indices are read from the syntax, before their expression is lowered; every
    other expression is built from the IR (:class:`dtg.check.sympy_fold.SympyFold`).

    :param steps: the value of ``T``.
    :param steps_name: the name ``T`` was declared with.
    :param schedules: schedule name → (parameter names, body AST), inlined at each call.
    :param message: the message's name (``x``).
    """

    def __init__(
        self,
        steps: int,
        steps_name: str,
        schedules: dict[str, tuple[tuple[str, ...], ast.Expr]],
        message: str | None = None,
    ) -> None:
        self.steps = steps
        self.steps_name = steps_name
        self.schedules = schedules
        self.message = message

    def index(self, node: ast.Expr) -> sp.Expr:
        """A level index (``t-1``, ``T``, ``0``) as a sympy expression in ``t``."""
        return sp.expand(self._build(node, {"t": T_SYMBOL}))

    def _build(self, node: Any, env: dict[str, sp.Expr]) -> sp.Expr:
        if isinstance(node, ast.Number):
            if node.value.is_integer() and abs(node.value) < 1e15:
                return sp.Integer(int(node.value))
            return sp.Float(node.value)
        if isinstance(node, ast.Name):
            if node.id in env:
                return env[node.id]
            if node.id == self.steps_name:
                return sp.Integer(self.steps)
            if node.id in CONSTANTS:
                return CONSTANTS[node.id]
            return sp.Symbol(node.id)
        if isinstance(node, ast.Unary):
            operand = self._build(node.operand, env)
            return -operand if node.op == "-" else operand
        if isinstance(node, ast.Binary):
            left, right = self._build(node.left, env), self._build(node.right, env)
            return _guarded(_BINARY[node.op], left, right)
        if isinstance(node, ast.Subscript):
            if (
                isinstance(node.base, ast.Name)
                and node.base.id == self.message
                and len(node.indices) == 1
            ):
                return sp.Symbol(f"x[{self.index(node.indices[0])}]")
            base = self._build(node.base, env)
            parts = [self._slice_text(i, env) for i in node.indices]
            return sp.Function(f"({base})[{', '.join(parts)}]")(*base.free_symbols)
        if isinstance(node, ast.Call):
            args = [self._build(a, env) for a in node.args]
            if node.func in self.schedules:
                params, body = self.schedules[node.func]
                return self._build(body, dict(zip(params, args, strict=True)))
            if node.func in MATH_FUNCTIONS and len(args) == 1:
                return _guarded(MATH_FUNCTIONS[node.func], args[0])
            if node.func in ("min", "max") and len(args) == 2:
                return _guarded(sp.Min if node.func == "min" else sp.Max, *args)
            if node.func in ("sum", "mean") and len(args) == 1 and _is_vector(args[0]):
                items = args[0].args  # a literal vector: the reduction is plain arithmetic
                total = _guarded(lambda *a: sp.Add(*a), *items)
                return total if node.func == "sum" else _guarded(_divide, total, len(items))
            kwargs = [self._build(k.value, env) for k in node.kwargs]
            return sp.Function(node.func)(*args, *kwargs)
        if isinstance(node, ast.Vector):
            return sp.Function("vector")(*[self._build(i, env) for i in node.items])
        if isinstance(node, ast.String):
            return sp.Symbol(repr(node.value))
        raise TypeError(f"cannot build sympy for {node!r}")

    def _slice_text(self, node: Any, env: dict[str, sp.Expr]) -> str:
        if isinstance(node, ast.Slice):
            start = "" if node.start is None else str(self._build(node.start, env))
            stop = "" if node.stop is None else str(self._build(node.stop, env))
            return f"{start}:{stop}"
        return str(self._build(node, env))


#: Beyond this exponent a power of constants is computed in floats: sympy would build the exact
#: integer (2^(10^10) never returns) or factor it (sqrt(1 - 2^10000)).
_EXACT_POWER_LIMIT = 64


def _divide(a: sp.Expr, b: sp.Expr) -> sp.Expr:
    return a / b


def _power(base: sp.Expr, exponent: sp.Expr) -> sp.Expr:
    if base.is_number and exponent.is_number:
        try:
            large = abs(complex(exponent)) > _EXACT_POWER_LIMIT
        except (TypeError, ValueError, OverflowError):
            large = True
        if large:
            try:
                value = complex(base) ** complex(exponent)
            except OverflowError:
                return sp.oo
            except (ZeroDivisionError, ValueError, TypeError):
                return sp.nan
            if abs(value.imag) > 1e-300 * max(1.0, abs(value.real)):
                return sp.nan  # a complex value: undefined for the range check
            return sp.Float(value.real) if math.isfinite(value.real) else sp.oo
    return base**exponent


_BINARY: dict[str, Callable[[sp.Expr, sp.Expr], sp.Expr]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": _divide,
    "^": _power,
}


def _guarded(function: Callable[..., sp.Expr], *args: sp.Expr) -> sp.Expr:
    """``function(*args)``, with a value sympy cannot represent as ``nan`` (undefined).

    sympy evaluates functions of numbers eagerly: ``exp(exp(1e308))`` overflows mpmath, ``min``
    of ``zoo`` is not comparable. An undefined value is reported by the checker's range check
    at the level where it is used, with the statement's location.
    """
    try:
        return function(*args)
    except (OverflowError, ValueError, TypeError, ZeroDivisionError, MemoryError):
        return sp.nan


def _is_vector(expr: sp.Expr) -> bool:
    return isinstance(expr, AppliedUndef) and expr.func.__name__ == "vector"


def nets_in(expr: sp.Expr) -> set[str]:
    """Names of the nets an expression calls (also through slices of their outputs)."""
    names = set()
    for function in expr.atoms(AppliedUndef):
        name = function.func.__name__
        if name.startswith("net_"):
            names.add(name[4:])
    return names


def has_symbol(expr: sp.Expr, symbol: sp.Symbol) -> bool:
    """Whether ``symbol`` occurs in ``expr``, including inside opaque function calls."""
    return symbol in expr.free_symbols


def linear_coefficient(mean: sp.Expr, x: sp.Symbol = X_PREV) -> sp.Expr | None:
    """``a`` when ``mean == a * x`` exactly with ``a`` free of ``x`` and of nets; else ``None``.

    Proven by differentiation, not by matching the text: when ∂mean/∂x = a is free of x, then
    mean − a·x is constant in x and equals mean at x = 0, which must vanish. ``x * c + 0``,
    ``c * (x)`` and ``(c/2) * x * 2`` all give ``c``; ``sin(x)`` or ``x + 1`` give ``None``.
    """
    if nets_in(mean):
        return None
    coefficient = sp.diff(mean, x)
    if has_symbol(coefficient, x):
        return None
    offset = mean.subs(x, 0)
    if offset != 0 and sp.simplify(offset) != 0:  # the cheap structural test first
        return None
    return coefficient


def telescoping_ratio(keep: sp.Expr, t: sp.Symbol = T_SYMBOL) -> sp.Expr | None:
    """``g`` when ``keep(t) == g(t) / g(t-1)``, so that ∏_{k≤t} keep(k) = g(t)/g(0); else ``None``."""
    numerator, denominator = sp.fraction(sp.together(keep))
    if sp.simplify(denominator - numerator.subs(t, t - 1)) == 0:
        return numerator
    return None


def table(expr: sp.Expr, steps: int, start: int = 0) -> np.ndarray:
    """Evaluate ``expr`` (free symbol ``t`` only) at ``t = 0..steps`` in float64.

    Entries before ``start`` are ``nan``; any level where the value is not finite (division by
    zero, log of 0) is ``nan`` or ``±inf`` for the caller's range check to report.

    :returns: array of shape ``[steps + 1]``.
    """
    free = expr.free_symbols - {T_SYMBOL}
    if free:
        raise ValueError(f"table of an expression with free symbols {sorted(map(str, free))}")
    levels = np.arange(steps + 1, dtype=np.float64)
    out = np.full(steps + 1, np.nan)
    if expr.has(sp.zoo, sp.nan, sp.oo, -sp.oo):
        return out  # undefined everywhere (e.g. a division by t - t)
    if expr.atoms(AppliedUndef):
        # An opaque function (a net, a vector, an index into one): nothing numeric to tabulate.
        # Checked before a constant's evalf: complex(f()^10000) expands a 10000th power.
        return out
    if not expr.has(T_SYMBOL):
        try:
            value = complex(expr.evalf())
            out[start:] = value.real if abs(value.imag) < 1e-300 else np.nan
        except (TypeError, ValueError, OverflowError, ZeroDivisionError):
            pass
        return out
    with np.errstate(all="ignore"):
        try:
            values = np.asarray(_numeric(expr, levels[start:]), dtype=np.complex128)
        except (_Unsupported, RecursionError):
            # lambdify prints the tree dtg built from the AST; its only symbol is t.
            try:
                function = sp.lambdify(T_SYMBOL, expr, modules="numpy")
                values = np.asarray(function(levels[start:]), dtype=np.complex128)
            except Exception:  # noqa: BLE001 - any failure falls back to per-level evaluation
                values = np.array([_evaluate_one(expr, int(k)) for k in levels[start:]])
    real = np.where(np.abs(values.imag) < 1e-12, values.real, np.nan)
    out[start:] = np.broadcast_to(real, out[start:].shape)
    return out


class _Unsupported(Exception):
    """A node :func:`_numeric` does not know (the caller falls back to lambdify)."""


_NUMPY_FUNCTIONS = {
    sp.exp: np.exp,
    sp.log: np.log,
    sp.cos: np.cos,
    sp.sin: np.sin,
    sp.tanh: np.tanh,
    sp.Abs: np.abs,
    sp.floor: np.floor,
}


def _numeric(expr: sp.Expr, t: np.ndarray, i: np.ndarray | None = None) -> np.ndarray | float:
    """Evaluate ``expr`` at the levels ``t`` (float64) by walking the sympy tree.

    The same numbers as ``lambdify`` with numpy (a test compares them): real float64 arithmetic,
    ``nan`` for the sqrt/log of a negative number. It does not print and compile code for every
    schedule, so a file with 10,000 schedules checks in seconds.
    """
    if expr is T_SYMBOL:
        return t
    if expr is I_SYMBOL and i is not None:
        return i
    if expr.is_Number or expr.is_NumberSymbol:
        return float(expr)
    args = [_numeric(a, t, i) for a in expr.args]
    if isinstance(expr, sp.Add):
        return sum(args[1:], args[0])
    if isinstance(expr, sp.Mul):
        product = args[0]
        for arg in args[1:]:
            product = product * arg
        return product
    if isinstance(expr, sp.Pow):
        return np.power(np.asarray(args[0], dtype=np.float64), args[1])
    if expr.func in _NUMPY_FUNCTIONS:
        return _NUMPY_FUNCTIONS[expr.func](np.asarray(args[0], dtype=np.float64))
    if expr.func in (sp.Min, sp.Max):
        pick = np.minimum if expr.func is sp.Min else np.maximum
        out = args[0]
        for value in args[1:]:
            out = pick(out, value)
        return out
    raise _Unsupported(type(expr).__name__)


def _evaluate_one(expr: sp.Expr, level: int) -> complex:
    try:
        return complex(expr.subs(T_SYMBOL, level).evalf())
    except Exception:  # noqa: BLE001 - an undefined value is reported by the range check
        return complex(math.nan)


class _Latex(LatexPrinter):
    """sympy's LaTeX, with a vector ``[a, b]`` as a column ``(a; b)`` (a per-coordinate kernel)."""

    def _print_Function(self, expr: Any, exp: str | None = None) -> str:
        if isinstance(expr, AppliedUndef) and expr.func.__name__ == "vector":
            items = r" \\ ".join(self._print(item) for item in expr.args)
            column = rf"\begin{{pmatrix}} {items} \end{{pmatrix}}"
            return column if exp is None else rf"{column}^{{{exp}}}"
        name = expr.func.__name__ if isinstance(expr, AppliedUndef) else ""
        if name.startswith("index["):  # enc(x)[0:16] as enc(x)_{0:16}
            value = self._print(expr.args[0])
            shown = rf"{value}_{{{name[6:-1]}}}"
            return shown if exp is None else rf"\left({shown}\right)^{{{exp}}}"
        if name.startswith("net_"):  # a net as an operator: \operatorname{enc}\left(x\right)
            args = ", ".join(self._print(arg) for arg in expr.args)
            shown = rf"\operatorname{{{name[4:]}}}\left({args}\right)"
            return shown if exp is None else rf"{shown}^{{{exp}}}"
        if name.startswith("grad:"):  # grad(logr, x[t]) as \nabla \log r\left(x_{t}\right)
            args = ", ".join(self._print(arg) for arg in expr.args)
            shown = rf"\nabla {reward_latex(name[5:])}\left({args}\right)"
            return shown if exp is None else rf"\left({shown}\right)^{{{exp}}}"
        return super()._print_Function(expr, exp)


def latex(expr: sp.Expr) -> str:
    """LaTeX of a sympy expression, nets printed as operators, vectors as columns."""
    return _Latex().doprint(expr)

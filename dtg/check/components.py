"""Per-coordinate sympy of a kernel's arguments: is a Normal destruction *diagonal* linear-Gaussian?

``Normal([0.9, 0.8] * x[t-1], 0.3)`` or ``Normal(sqrt(1 - b(t)) * x[t-1], [0.1, 0.2])`` act on
each coordinate ``i`` of the message with its own ``a_i(t)`` and ``s_i(t)``. The scalar algebra
of :mod:`dtg.check.symbolic` treats a vector as an opaque function; here every IR node folds to
a numpy array (dtype object) of sympy expressions of the node's shape, with its own symbol for
each element of ``x[t-1]``, so that coordinate ``i`` of the mean is proven to be
``a_i(t) · x[t-1]_i`` (reading no other coordinate) by the same differentiation as the scalar case.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import sympy as sp
from sympy.core.function import AppliedUndef

from ..ir import expr as ir
from .symbolic import _BINARY, MATH_FUNCTIONS, X_PREV, _divide, _guarded, linear_coefficient
from .sympy_fold import SympyFold

__all__ = ["ComponentFold", "diagonal", "has_components"]


class _Opaque(Exception):
    """A node without a per-coordinate meaning here (a net, a reward, another level)."""


def _scalar(value: sp.Expr) -> np.ndarray:
    out = np.empty((), dtype=object)
    out[()] = value
    return out


def _map(function: Callable[..., sp.Expr], *arrays: np.ndarray) -> np.ndarray:
    """``function`` elementwise over broadcast object arrays, as an array (0-d included)."""
    result = np.frompyfunc(lambda *a: _guarded(function, *a), len(arrays), 1)(*arrays)
    return result if isinstance(result, np.ndarray) else _scalar(result)


def has_components(*exprs: sp.Expr) -> bool:
    """Whether a scalar sympy tree holds a vector or an index of one (opaque to the scalar
    algebra): then the kernel is analysed per coordinate."""
    for expr in exprs:
        for function in expr.atoms(AppliedUndef):
            name = function.func.__name__
            if name == "vector" or name.startswith(("(vector", f"({X_PREV})")):
                return True
    return False


class ComponentFold(ir.ExprFold[np.ndarray]):
    """IR expressions → object arrays of sympy expressions, one per coordinate.

    :param steps: the value of ``T``.
    :param schedules: the model's schedule definitions (scalar: folded by :class:`SympyFold`).
    :param shape: the shape of ``x[t-1]``; :attr:`symbols` holds one symbol per element.
    """

    def __init__(self, steps: int, schedules: dict, shape: tuple[int, ...]) -> None:
        self.scalar = SympyFold(steps, schedules)
        symbols = [sp.Symbol(f"x_{{t-1}}[{i}]") for i in range(int(np.prod(shape, dtype=int)))]
        self.symbols = np.empty(len(symbols), dtype=object)
        self.symbols[:] = symbols
        self.symbols = self.symbols.reshape(shape)

    def const(self, node: ir.Const) -> np.ndarray:
        return _scalar(self.scalar.const(node))

    def param(self, node: ir.Param) -> np.ndarray:
        return _scalar(self.scalar.param(node))

    def var(self, node: ir.Var) -> np.ndarray:
        return _scalar(self.scalar.var(node))

    def level_ref(self, node: ir.LevelRef) -> np.ndarray:
        if node.level.key != "prev":
            raise _Opaque(node.level.text())
        return self.symbols

    def neg(self, node: ir.Neg, operand: np.ndarray) -> np.ndarray:
        return _map(lambda a: -a, operand)

    def binary(self, node: ir.Binary, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        return _map(_BINARY[node.op.value], left, right)

    def vector(self, node: ir.Vector, *items: np.ndarray) -> np.ndarray:
        out = np.empty(len(items), dtype=object)
        for position, item in enumerate(items):
            out[position] = item[()]
        return out

    def index(self, node: ir.Index, base: np.ndarray) -> np.ndarray:
        picked = base[tuple(node.items)]
        return picked if isinstance(picked, np.ndarray) else _scalar(picked)

    def schedule_call(self, node: ir.ScheduleCall, *args: np.ndarray) -> np.ndarray:
        if any(arg.shape for arg in args):
            raise _Opaque(node.name)  # a schedule takes scalars
        return _scalar(self.scalar.schedule_call(node, *(arg[()] for arg in args)))

    def call(self, node: ir.Call, *args: np.ndarray) -> np.ndarray:
        name = node.fn.value
        if name in MATH_FUNCTIONS:
            return _map(MATH_FUNCTIONS[name], args[0])
        if node.fn in (ir.Builtin.MIN, ir.Builtin.MAX):
            return _map(sp.Min if node.fn is ir.Builtin.MIN else sp.Max, *args)
        items = list(args[0].flat)
        total = _guarded(lambda *a: sp.Add(*a), *items)
        return _scalar(total if node.fn is ir.Builtin.SUM else _guarded(_divide, total, len(items)))

    def net_call(self, node: ir.NetCall, *args: np.ndarray) -> np.ndarray:
        raise _Opaque(node.net)

    def reward_call(self, node: ir.RewardCall, arg: np.ndarray) -> np.ndarray:
        raise _Opaque(node.name)


def diagonal(
    mean: ir.Expr, std: ir.Expr, steps: int, schedules: dict, shape: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray] | None:
    """Per-coordinate ``a_i(t)`` and ``s_i(t)`` of ``Normal(mean, std)`` over ``x[t-1]`` of
    ``shape``, when every coordinate's mean is ``a_i(t) · x[t-1]_i`` and its std is free of the
    message; else ``None``.

    :returns: two object arrays of ``shape`` (sympy expressions in ``t``).
    """
    fold = ComponentFold(steps, schedules, shape)
    try:
        means = np.broadcast_to(fold.fold(mean), shape)
        stds = np.broadcast_to(fold.fold(std), shape)
    except _Opaque:
        return None
    symbols = set(fold.symbols.flat)
    coefficients = np.empty(shape, dtype=object)
    for index in np.ndindex(*shape):
        coefficient = linear_coefficient(means[index], fold.symbols[index])
        if coefficient is None or coefficient.free_symbols & symbols:
            return None
        if stds[index].free_symbols & symbols:
            return None
        coefficients[index] = coefficient
    return coefficients, np.array(stds, dtype=object)

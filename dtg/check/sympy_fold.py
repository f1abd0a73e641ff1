"""Typed IR expressions → sympy, by the IR's one traversal (:class:`~dtg.ir.expr.ExprFold`).

The checker lowers every expression to IR first; the algebra (is a destruction linear-Gaussian?
does a keep telescope?) and the float64 tables are then built from the IR, not from the syntax.
"""

from __future__ import annotations

from typing import Any

import sympy as sp

from ..ir import expr as ir
from .symbolic import (
    _BINARY,
    CONSTANTS,
    I_SYMBOL,
    MATH_FUNCTIONS,
    T_SYMBOL,
    _divide,
    _guarded,
    _is_vector,
)

__all__ = ["SympyFold"]


class SympyFold(ir.ExprFold[sp.Expr]):
    """Translate typed IR expressions to sympy, for the algebra (linearity, telescoping) and
    the float64 tables (the trees the syntax-based builder made before the IR existed).

    :param steps: the value of ``T``.
    :param schedules: the model's schedule definitions, inlined at each call.
    :param levels: level key (:attr:`dtg.ir.expr.Level.key`: ``prev``, ``next``, ``zero``) → the
        symbol standing for that level's elements, e.g. ``{"prev": X_PREV}`` in a destruction.
    :param params: what a schedule's parameters stand for (``{"t": T_SYMBOL}``).
    """

    def __init__(
        self,
        steps: int,
        schedules: dict[str, Any],
        levels: dict[str, sp.Symbol] | None = None,
        params: dict[str, sp.Expr] | None = None,
    ) -> None:
        self.steps = steps
        self.schedules = schedules
        self.levels = levels or {}
        self.params = params or {}

    def const(self, node: ir.Const) -> sp.Expr:
        if node.text in CONSTANTS:
            return CONSTANTS[node.text]
        if float(node.value).is_integer() and abs(node.value) < 1e15:
            return sp.Integer(int(node.value))
        return sp.Float(node.value)

    def param(self, node: ir.Param) -> sp.Expr:
        if node.kind is ir.ParamKind.STEPS:
            return sp.Integer(self.steps)
        if node.kind is ir.ParamKind.POSITION:
            return I_SYMBOL
        return T_SYMBOL

    def var(self, node: ir.Var) -> sp.Expr:
        return self.params[node.name] if node.name in self.params else sp.Symbol(node.name)

    def level_ref(self, node: ir.LevelRef) -> sp.Expr:
        symbol = self.levels.get(node.level.key)
        if symbol is not None:
            return symbol
        level = (
            T_SYMBOL + node.level.offset
            if node.level.anchor is ir.LevelAnchor.CURRENT
            else node.level.offset
        )
        return sp.Symbol(f"x[{level}]")

    def neg(self, node: ir.Neg, operand: sp.Expr) -> sp.Expr:
        return -operand

    def binary(self, node: ir.Binary, left: sp.Expr, right: sp.Expr) -> sp.Expr:
        return _guarded(_BINARY[node.op.value], left, right)

    def vector(self, node: ir.Vector, *items: sp.Expr) -> sp.Expr:
        return sp.Function("vector")(*items)

    def index(self, node: ir.Index, base: sp.Expr) -> sp.Expr:
        # The items in the function's name (two slices of one value differ), the value as its
        # argument (so the levels and nets it reads stay visible, in a fixed order).
        return sp.Function(f"index[{', '.join(node.item_texts())}]")(base)

    def schedule_call(self, node: ir.ScheduleCall, *args: sp.Expr) -> sp.Expr:
        definition = self.schedules[node.name]
        inner = SympyFold(
            self.steps, self.schedules, self.levels, dict(zip(definition.params, args, strict=True))
        )
        return inner.fold(definition.body)

    def call(self, node: ir.Call, *args: sp.Expr) -> sp.Expr:
        name = node.fn.value
        if name in MATH_FUNCTIONS:
            return _guarded(MATH_FUNCTIONS[name], args[0])
        if node.fn in (ir.Builtin.MIN, ir.Builtin.MAX):
            return _guarded(sp.Min if node.fn is ir.Builtin.MIN else sp.Max, *args)
        if _is_vector(args[0]):
            items = args[0].args  # a literal vector: the reduction is plain arithmetic
            total = _guarded(lambda *a: sp.Add(*a), *items)
            return total if node.fn is ir.Builtin.SUM else _guarded(_divide, total, len(items))
        return sp.Function(name)(*args)

    def net_call(self, node: ir.NetCall, *args: sp.Expr) -> sp.Expr:
        return sp.Function(f"net_{node.net}")(*args)

    def reward_call(self, node: ir.RewardCall, arg: sp.Expr) -> sp.Expr:
        return sp.Function(node.name)(arg)

    def reward_grad(self, node: ir.RewardGrad, arg: sp.Expr) -> sp.Expr:
        # A non-linear function of the level; ':' keeps it apart from any name a .dtg can write.
        return sp.Function(f"grad:{node.reward}")(arg)

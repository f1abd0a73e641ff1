"""Print IR expressions as dtg text (``sqrt(1 - beta(t)) * x[t-1]``): equations, dumps, docstrings.

The text reads like the source: parentheses only where precedence needs them, numbers as they
were written, levels tight (``x[t-1]``).
"""

from __future__ import annotations

from .expr import (
    GRAD_CLIP,
    Binary,
    BinOp,
    Call,
    Const,
    Expr,
    ExprFold,
    Hyperschedule,
    Index,
    LevelRef,
    Neg,
    NetCall,
    Param,
    ParamKind,
    RewardCall,
    RewardGrad,
    RewardKind,
    ScheduleCall,
    Var,
    Vector,
)

__all__ = ["to_text", "reward_latex"]

# Binding strength (higher binds tighter); unary minus sits between * and ^.
_STRENGTH = {BinOp.ADD: 1, BinOp.SUB: 1, BinOp.MUL: 2, BinOp.DIV: 2, BinOp.POW: 4}
_NEG, _ATOM = 3, 5

Printed = tuple[str, int]  # the text and the binding strength of its outermost operator


def _wrap(printed: Printed, needed: int) -> str:
    text, strength = printed
    return f"({text})" if strength < needed else text


class _Printer(ExprFold[Printed]):
    def __init__(self, steps_name: str) -> None:
        self.steps_name = steps_name

    def const(self, node: Const) -> Printed:
        if node.text:
            return node.text, _ATOM
        text = str(int(node.value)) if node.integer else repr(float(node.value))
        return (text, _ATOM) if node.value >= 0 else (text, _NEG)

    def param(self, node: Param) -> Printed:
        return (self.steps_name if node.kind is ParamKind.STEPS else node.kind.value), _ATOM

    def var(self, node: Var) -> Printed:
        return node.name, _ATOM

    def level_ref(self, node: LevelRef) -> Printed:
        return f"{node.message}[{node.level.text()}]", _ATOM

    def schedule_call(self, node: ScheduleCall, *args: Printed) -> Printed:
        return f"{node.name}({', '.join(a[0] for a in args)})", _ATOM

    def net_call(self, node: NetCall, *args: Printed) -> Printed:
        return f"{node.net}({', '.join(a[0] for a in args)})", _ATOM

    def reward_call(self, node: RewardCall, arg: Printed) -> Printed:
        if node.kind is RewardKind.CLASSIFY:
            classes = ", ".join(map(str, node.classes))
            return f"classify({arg[0]}, classes = [{classes}])", _ATOM
        return f"{node.name}({arg[0]})", _ATOM

    def reward_grad(self, node: RewardGrad, arg: Printed) -> Printed:
        clip = "" if node.clip == GRAD_CLIP else f", clip = {node.clip:g}"
        return f"grad({node.reward}, {arg[0]}{clip})", _ATOM

    def binary(self, node: Binary, left: Printed, right: Printed) -> Printed:
        strength = _STRENGTH[node.op]
        if node.op is BinOp.POW:  # right-associative, the base an atom
            return f"{_wrap(left, _ATOM)}^{_wrap(right, _NEG)}", strength
        return f"{_wrap(left, strength)} {node.op.value} {_wrap(right, strength + 1)}", strength

    def neg(self, node: Neg, operand: Printed) -> Printed:
        return "-" + _wrap(operand, _NEG), _NEG

    def call(self, node: Call, *args: Printed) -> Printed:
        return f"{node.fn.value}({', '.join(a[0] for a in args)})", _ATOM

    def index(self, node: Index, base: Printed) -> Printed:
        return f"{_wrap(base, _ATOM)}[{', '.join(node.item_texts())}]", _ATOM

    def hyperschedule(
        self, node: Hyperschedule, level: Printed, position: Printed, expansion: Printed
    ) -> Printed:
        options = "".join(f", {name} = {value}" for name, value in node.options)
        return f"{node.name}({level[0]}, {position[0]}{options})", _ATOM

    def vector(self, node: Vector, *items: Printed) -> Printed:
        return "[" + ", ".join(i[0] for i in items) + "]", _ATOM


def to_text(node: Expr, steps_name: str = "T") -> str:
    """``node`` as dtg text.

    :param steps_name: the model's name for ``T``.
    """
    return _Printer(steps_name).fold(node)[0]


def reward_latex(name: str) -> str:
    """The LaTeX of a log-reward's name: ``logr`` → ``\\log r``, ``loglik`` →
    ``\\log \\mathrm{lik}``, ``energy`` → ``\\mathrm{energy}`` (one letter in italics, a longer
    name upright).

    :param name: the reward statement's name.
    :returns: LaTeX math.
    """
    rest = name[3:].lstrip("_") if name.startswith("log") else ""
    return rf"\log {_tex_name(rest)}" if rest else _tex_name(name)


def _tex_name(name: str) -> str:
    return name if len(name) == 1 else rf"\mathrm{{{name}}}".replace("_", r"\_")

"""Built-in hyperschedules: hdlm's three families as integer noise levels τ(t, i).

A *hyperschedule* gives each token position ``i`` (0-based) its own noise level at each
destruction level ``t``: an integer τ(t, i) in ``0..τ_max``, 0 clean and τ_max fully destroyed,
mapped through a base schedule to a marginal keep probability α(t, i) = α(τ(t, i)). The three
families of Fathi, Scholak and Noël (hdlm's ``metaschedule.py``) are built in, written in dtg's
direction (destruction level ``t``; hdlm counts generation steps ``s = T − t``):

``simple_annealing(t, i, width = W)``
    a diagonal of width ``W`` sliding left to right (τ_max = W, ``T = L + W − 1``):
    ``τ = min(W, max(0, t + i + W − T))``. ``width = 1`` is the autoregressive staircase
    (position ``L − t`` is destroyed at level ``t``).
``block_annealing(t, i, size = B, levels = K)``
    blocks of ``B`` positions, each taken from K to 0 in K levels, left block first
    (τ_max = K, ``T = K · ⌈L / B⌉``): ``τ = min(K, max(0, K (b + 1) − T + t))``, ``b = ⌊i/B⌋``.
``hybrid_annealing(t, i, size = B, levels = K)``
    blocks of ``B``; inside a block every position drops to K − 1 together, then a diagonal
    sweeps left to right (``S = K + B − 1`` levels per block, ``T = S · ⌈L / B⌉``): with
    ``u = T − t − b S`` and ``j = i − b B``,
    ``τ = max(0, K − 1 − max(0, u − 1 − j)) + min(1, max(0, 1 − u))``.

Each lowers to an :class:`~dtg.ir.expr.Hyperschedule` node holding its expansion into
``min``/``max``/``floor`` arithmetic (what the tables and the LaTeX show; ``--emit ir`` prints
the call); ``L`` is the message's number of positions, and a model
whose ``steps`` disagree with the family's ``T`` is a located error.

References: Fathi, Scholak and Noël 2025, Unifying Autoregressive and Diffusion-Based Sequence
Generation (arXiv 2504.06416), §3 and ServiceNow/hdlm ``hdlm/metaschedule.py``
(``make_simple_annealing``, ``make_block_annealing``, ``make_hybrid_annealing``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from ..errors import DtgRangeError, DtgTypeError
from ..ir import expr as ir
from ..syntax import ast

__all__ = ["OPTIONS", "HyperLowering", "steps_needed"]

#: The built-in hyperschedules and their options (name → option names).
OPTIONS: dict[str, tuple[str, ...]] = {
    "simple_annealing": ("width",),
    "block_annealing": ("size", "levels"),
    "hybrid_annealing": ("size", "levels"),
}

_EXAMPLE = {
    "simple_annealing": "simple_annealing(t, i, width = 1)",
    "block_annealing": "block_annealing(t, i, size = 8, levels = 4)",
    "hybrid_annealing": "hybrid_annealing(t, i, size = 8, levels = 4)",
}


def _num(value: int) -> ir.Expr:
    return ir.Const(float(value), True, str(value))


def _add(a: ir.Expr, b: ir.Expr) -> ir.Expr:
    if isinstance(b, ir.Const) and b.value < 0:  # t - 3, not t + -3
        return ir.Binary(ir.BinOp.SUB, a, _num(int(-b.value)))
    return ir.Binary(ir.BinOp.ADD, a, b)


def _sub(a: ir.Expr, b: ir.Expr) -> ir.Expr:
    return ir.Binary(ir.BinOp.SUB, a, b)


def _mul(a: ir.Expr, b: ir.Expr) -> ir.Expr:
    return ir.Binary(ir.BinOp.MUL, a, b)


def _min(a: ir.Expr, b: ir.Expr) -> ir.Expr:
    return ir.Call(ir.Builtin.MIN, (a, b))


def _max(a: ir.Expr, b: ir.Expr) -> ir.Expr:
    return ir.Call(ir.Builtin.MAX, (a, b))


def _clip(value: ir.Expr, top: int) -> ir.Expr:
    return _min(_num(top), _max(_num(0), value))


def _block(i: ir.Expr, size: int) -> ir.Expr:
    return ir.Call(ir.Builtin.FLOOR, (ir.Binary(ir.BinOp.DIV, i, _num(size)),))


def steps_needed(name: str, length: int, options: dict[str, int]) -> int:
    """The number of levels ``T`` a family needs over ``length`` positions."""
    if name == "simple_annealing":
        return length + options["width"] - 1
    blocks = math.ceil(length / options["size"])
    if name == "block_annealing":
        return options["levels"] * blocks
    return (options["levels"] + options["size"] - 1) * blocks


def _simple(t: ir.Expr, i: ir.Expr, steps: int, options: dict[str, int]) -> ir.Expr:
    width = options["width"]
    return _clip(_add(_add(t, i), _num(width - steps)), width)


def _blocks(t: ir.Expr, i: ir.Expr, steps: int, options: dict[str, int]) -> ir.Expr:
    size, levels = options["size"], options["levels"]
    start = _mul(_num(levels), _add(_block(i, size), _num(1)))
    return _clip(_add(_sub(start, _num(steps)), t), levels)


def _hybrid(t: ir.Expr, i: ir.Expr, steps: int, options: dict[str, int]) -> ir.Expr:
    size, levels = options["size"], options["levels"]
    block = _block(i, size)
    u = _sub(_sub(_num(steps), t), _mul(_num(levels + size - 1), block))
    j = _sub(i, _mul(_num(size), block))
    sweep = _max(_num(0), _sub(_num(levels - 1), _max(_num(0), _sub(_sub(u, _num(1)), j))))
    waiting = _min(_num(1), _max(_num(0), _sub(_num(1), u)))
    return _add(sweep, waiting)


_BUILD: dict[str, Callable[[ir.Expr, ir.Expr, int, dict[str, int]], ir.Expr]] = {
    "simple_annealing": _simple,
    "block_annealing": _blocks,
    "hybrid_annealing": _hybrid,
}


class HyperLowering:
    """The call rule of the built-in hyperschedules (a mixin of
    :class:`~dtg.check.exprs.ExprChecker`: it needs ``scalar``, ``constant``, ``error`` and
    ``scope``)."""

    def _hyperschedule(self, node: ast.Call) -> ir.Expr:
        name, scope = node.func, self.scope
        example = _EXAMPLE[name]
        if len(node.args) != 2:
            raise self.error(
                DtgTypeError,
                f"{name} takes the level and the position: {example}",
                node.span,
            )
        if scope.positions is None:
            raise self.error(
                DtgTypeError, f"{name} needs a token message to count positions in", node.span
            )
        t, i = (self.scalar(arg, f"an argument of {name}") for arg in node.args)
        options: dict[str, int] = {}
        for keyword in node.kwargs:
            if keyword.name not in OPTIONS[name]:
                raise self.error(
                    DtgTypeError,
                    f"{name} has no option '{keyword.name}'",
                    keyword.span,
                    hints=[f"its options: {', '.join(OPTIONS[name])}; e.g. {example}"],
                )
            value = _number(self.scalar(keyword.value, f"{name}'s {keyword.name}"), scope.steps)
            if value is None or not float(value).is_integer() or value < 1:
                raise self.error(
                    DtgRangeError,
                    f"{name}'s {keyword.name} must be a positive whole number (numbers and "
                    f"{scope.steps_name} only)",
                    keyword.value.span,
                )
            options[keyword.name] = int(value)
        missing = [option for option in OPTIONS[name] if option not in options]
        if missing:
            raise self.error(
                DtgTypeError,
                f"{name} needs {', '.join(missing)}: {example}",
                node.span,
            )
        if "size" in options and options["size"] > scope.positions:
            raise self.error(
                DtgRangeError,
                f"{name}'s size = {options['size']} is more than the {scope.positions} positions",
                node.span,
                hints=[f"one block of every position is size = {scope.positions}"],
            )
        needed = steps_needed(name, scope.positions, options)
        if needed != scope.steps:
            shown = ", ".join(f"{k} = {v}" for k, v in options.items())
            raise self.error(
                DtgRangeError,
                f"{name}({shown}) over {scope.positions} positions has {needed} levels, but "
                f"steps {scope.steps_name} = {scope.steps}",
                node.span,
                hints=[f"write steps {scope.steps_name} = {needed}, or change the options"],
            )
        expansion = _BUILD[name](t, i, scope.steps, options)
        return ir.Hyperschedule(name, t, i, tuple(options.items()), expansion, span=node.span)


def _number(node: ir.Expr, steps: int) -> float | None:
    """The value of an option made of numbers, ``T`` and arithmetic (``None`` otherwise)."""
    if isinstance(node, ir.Const):
        return node.value
    if isinstance(node, ir.Param) and node.kind is ir.ParamKind.STEPS:
        return float(steps)
    if isinstance(node, ir.Neg):
        value = _number(node.operand, steps)
        return None if value is None else -value
    if isinstance(node, ir.Binary) and node.op is not ir.BinOp.POW:
        left, right = _number(node.left, steps), _number(node.right, steps)
        if left is None or right is None or (node.op is ir.BinOp.DIV and right == 0):
            return None
        return {
            ir.BinOp.ADD: left + right,
            ir.BinOp.SUB: left - right,
            ir.BinOp.MUL: left * right,
            ir.BinOp.DIV: left / right,
        }[node.op]
    return None

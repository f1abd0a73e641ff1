"""Compile checked AST expressions to torch closures, vectorised over the batch.

Each expression is turned once into a tree of Python closures; evaluating it is then a chain of
tensor operations with no name lookups or sympy. Values are either 0-dim constants or tensors
with a leading batch dimension ``B`` followed by the value's shape (a per-example scalar such as
``t`` is ``[B]``; ``x[t-1]`` of ``real[2]`` is ``[B, 2]``). When a ``[B]`` scalar meets a
``[B, d…]`` tensor it is unsqueezed on the right, which is the scalar broadcasting the checker
allows.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sympy as sp
import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import DtgRuntimeError
from ..ir import ModelIR
from ..symbolic import T_SYMBOL, SympyBuilder
from ..syntax import ast

__all__ = ["Env", "ExprCompiler", "align"]


@dataclass
class Env:
    """What an expression reads at evaluation time.

    :param batch: the batch size ``B``.
    :param t: the level of each example, ``[B]`` float (or a 0-dim tensor).
    :param levels: level key (``"prev"`` = x[t-1], ``"next"`` = x[t], ``"zero"`` = x[0]) → tensor.
    :param params: values of bound parameter names (a reward's ``x``).
    """

    batch: int
    t: Tensor
    levels: dict[str, Tensor] = field(default_factory=dict)
    params: dict[str, Tensor] = field(default_factory=dict)
    cache: dict[int, Any] = field(default_factory=dict)


Closure = Callable[[Env], Tensor]


def align(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """Unsqueeze the lower-rank batched tensor on the right so that ``[B]`` meets ``[B, d…]``."""
    if a.dim() >= 1 and b.dim() >= 1 and a.dim() != b.dim():
        if a.dim() < b.dim():
            a = a.reshape(a.shape + (1,) * (b.dim() - a.dim()))
        else:
            b = b.reshape(b.shape + (1,) * (a.dim() - b.dim()))
    return a, b


_MATH: dict[str, Callable[[Tensor], Tensor]] = {
    "sqrt": torch.sqrt,
    "exp": torch.exp,
    "log": torch.log,
    "cos": torch.cos,
    "sin": torch.sin,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "softplus": F.softplus,
    "abs": torch.abs,
}


class ExprCompiler:
    """Turn expressions of one model into closures.

    :param ir: the checked model.
    :param nets: the built nets by name (called with ``t / T`` for time inputs).
    :param device: where constants live.
    """

    def __init__(self, ir: ModelIR, nets: dict[str, torch.nn.Module], device: torch.device) -> None:
        self.ir = ir
        self.nets = nets
        self.device = device
        statements = ir.model.statements if ir.parent is None else _all_statements(ir)
        self.schedules = {s.name: s for s in statements if isinstance(s, ast.Schedule)}
        self.builder = SympyBuilder(ir.steps, ir.steps_name, {}, ir.message.name)
        self.t_symbol = T_SYMBOL

    def constant(self, value: float) -> Tensor:
        # float64 0-dim constants: combined with batched tensors they take the batch's dtype
        # (float32 or float64) without first being rounded to float32.
        return torch.tensor(float(value), device=self.device, dtype=torch.float64)

    def compile(self, node: ast.Expr, bound: dict[str, Closure] | None = None) -> Closure:
        """A closure computing ``node``; ``bound`` maps parameter names to closures."""
        return self._compile(node, bound or {})

    def _compile(self, node: Any, bound: dict[str, Closure]) -> Closure:
        if isinstance(node, ast.Number):
            value = self.constant(node.value)
            return lambda env: value
        if isinstance(node, ast.Name):
            return self._name(node, bound)
        if isinstance(node, ast.Unary):
            operand = self._compile(node.operand, bound)
            return (lambda env: -operand(env)) if node.op == "-" else operand
        if isinstance(node, ast.Binary):
            return self._binary(node, bound)
        if isinstance(node, ast.Subscript):
            return self._subscript(node, bound)
        if isinstance(node, ast.Call):
            return self._call(node, bound)
        if isinstance(node, ast.Vector):
            items = [self._compile(i, bound) for i in node.items]

            def vector(env: Env) -> Tensor:
                values = [i(env) for i in items]
                values = [v.expand(env.batch) if v.dim() == 0 else v for v in values]
                return torch.stack(values, dim=-1)

            return vector
        raise TypeError(f"cannot evaluate {type(node).__name__}")

    def _name(self, node: ast.Name, bound: dict[str, Closure]) -> Closure:
        if node.id in bound:
            return bound[node.id]
        if node.id == "t":
            return lambda env: env.t
        if node.id == self.ir.steps_name:
            value = self.constant(self.ir.steps)
            return lambda env: value
        if node.id == "pi":
            value = self.constant(math.pi)
            return lambda env: value
        if node.id == "e":
            value = self.constant(math.e)
            return lambda env: value
        name = node.id
        return lambda env: env.params[name]

    def _binary(self, node: ast.Binary, bound: dict[str, Closure]) -> Closure:
        left, right = self._compile(node.left, bound), self._compile(node.right, bound)
        op = {
            "+": torch.add,
            "-": torch.sub,
            "*": torch.mul,
            "/": torch.div,
            "^": torch.pow,
        }[node.op]

        def binary(env: Env) -> Tensor:
            a, b = align(left(env), right(env))
            return op(a, b)

        return binary

    def _subscript(self, node: ast.Subscript, bound: dict[str, Closure]) -> Closure:
        base = node.base
        if isinstance(base, ast.Name) and base.id == self.ir.message.name:
            level = sp.expand(self.builder.index(node.indices[0]))
            key = _level_key(level, self.t_symbol)
            return lambda env: env.levels[key]
        inner = self._compile(base, bound)
        index: list[Any] = [slice(None)]  # the batch dimension
        for item in node.indices:
            if isinstance(item, ast.Slice):
                start = None if item.start is None else int(_const(item.start))
                stop = None if item.stop is None else int(_const(item.stop))
                index.append(slice(start, stop))
            else:
                index.append(int(_const(item)))
        key_tuple = tuple(index)
        return lambda env: inner(env)[key_tuple]

    def _call(self, node: ast.Call, bound: dict[str, Closure]) -> Closure:
        args = [self._compile(a, bound) for a in node.args]
        func = node.func
        if func in self.schedules:
            schedule = self.schedules[func]
            body = self.compile(schedule.body, dict(zip(schedule.params, args, strict=True)))
            return body
        if func in _MATH:
            fn, arg = _MATH[func], args[0]
            return lambda env: fn(arg(env))
        if func in ("min", "max"):
            first, second = args
            pick = torch.minimum if func == "min" else torch.maximum

            def extremum(env: Env) -> Tensor:
                a, b = align(first(env), second(env))
                return pick(a, b)

            return extremum
        if func in ("sum", "mean"):
            arg = args[0]
            reduce = torch.sum if func == "sum" else torch.mean

            def reduction(env: Env) -> Tensor:
                value = arg(env)
                return reduce(value.flatten(1), dim=1) if value.dim() > 1 else value

            return reduction
        if func in self.nets:
            return self._net(node, args)
        if func == "classify":
            from ..classifier import log_prob_classes

            image = args[0]
            classes = [int(_const(i)) for i in node.kwargs[0].value.items]
            vocab = self.ir.message.space.vocab

            return lambda env: log_prob_classes(image(env), classes, vocab)
        from ..plugins import rewards
        from ..targets import TARGETS

        if func in rewards():
            registered, arg = rewards()[func], args[0]  # the user's Python (dtg.plugins)

            def plugin(env: Env) -> Tensor:
                value = registered(arg(env))
                if not isinstance(value, Tensor) or value.shape != (env.batch,):
                    shape = tuple(value.shape) if isinstance(value, Tensor) else type(value)
                    raise DtgRuntimeError(
                        f"the plug-in reward '{func}' must return a tensor of shape "
                        f"[{env.batch}] (one log-reward per sample), got {shape}"
                    )
                return value

            return plugin
        if func in TARGETS:
            target, arg = TARGETS[func], args[0]
            return lambda env: target.log_reward(arg(env))
        raise TypeError(f"cannot evaluate a call to {func}")

    def _net(self, node: ast.Call, args: list[Closure]) -> Closure:
        nets, name = self.nets, node.func  # looked up per call: objectives may swap in targets
        spec = self.ir.nets[node.func]
        steps = float(self.ir.steps)
        kinds = [s.kind for s in spec.inputs]

        def call(env: Env) -> Tensor:
            values = []
            for kind, arg in zip(kinds, args, strict=True):
                value = arg(env)
                if kind == "time":
                    value = value.float() / steps
                    if value.dim() == 0:
                        value = value.expand(env.batch)
                values.append(value)
            return nets[name](*values)

        return call


def _const(node: ast.Expr) -> float:
    if isinstance(node, ast.Number):
        return node.value
    if isinstance(node, ast.Unary) and isinstance(node.operand, ast.Number):
        return -node.operand.value if node.op == "-" else node.operand.value
    raise TypeError("not a constant")


def _level_key(level: sp.Expr, t: sp.Symbol) -> str:
    if sp.simplify(level - (t - 1)) == 0:
        return "prev"
    if sp.simplify(level - t) == 0:
        return "next"
    if level == 0:
        return "zero"
    return str(level)


def _all_statements(ir: ModelIR) -> list[ast.Statement]:
    chain = []
    node: ModelIR | None = ir
    while node is not None:
        chain.append(node)
        node = node.parent
    statements: list[ast.Statement] = []
    for model in reversed(chain):
        statements.extend(model.model.statements)
    return statements

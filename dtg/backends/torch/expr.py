"""Lower typed IR expressions to torch closures, vectorised over the batch.

Each expression is turned once into a tree of Python closures; evaluating it is then a chain of
tensor operations with no name lookups or sympy. Values are either 0-dim constants or tensors
with a leading batch dimension ``B`` followed by the value's shape (a per-example scalar such as
``t`` is ``[B]``; ``x[t-1]`` of ``real[2]`` is ``[B, 2]``). When a ``[B]`` scalar meets a
``[B, d…]`` tensor it is unsqueezed on the right: the scalar broadcasting the checker allows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from ...channels.score import log_reward_and_grad
from ...classifier import log_prob_classes
from ...errors import DtgRuntimeError
from ...ir import ModelIR
from ...ir import expr as ir
from ...plugins import rewards
from ...targets import TARGETS

__all__ = ["Env", "ExprCompiler", "align"]


@dataclass
class Env:
    """What an expression reads at evaluation time.

    :param batch: the batch size ``B``.
    :param t: the level of each example, ``[B]`` float (or a 0-dim tensor).
    :param levels: level key (:attr:`dtg.ir.expr.Level.key`: ``"prev"`` = x[t-1], ``"next"`` =
        x[t], ``"zero"`` = x[0]) → tensor ``[B, *space]``.
    """

    batch: int
    t: Tensor
    levels: dict[str, Tensor] = field(default_factory=dict)


Closure = Callable[[Env], Tensor]


def align(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """Unsqueeze the lower-rank batched tensor on the right so that ``[B]`` meets ``[B, d…]``."""
    if a.dim() >= 1 and b.dim() >= 1 and a.dim() != b.dim():
        if a.dim() < b.dim():
            a = a.reshape(a.shape + (1,) * (b.dim() - a.dim()))
        else:
            b = b.reshape(b.shape + (1,) * (a.dim() - b.dim()))
    return a, b


_ELEMENTWISE: dict[ir.Builtin, Callable[[Tensor], Tensor]] = {
    ir.Builtin.SQRT: torch.sqrt,
    ir.Builtin.EXP: torch.exp,
    ir.Builtin.LOG: torch.log,
    ir.Builtin.COS: torch.cos,
    ir.Builtin.SIN: torch.sin,
    ir.Builtin.TANH: torch.tanh,
    ir.Builtin.SIGMOID: torch.sigmoid,
    ir.Builtin.SOFTPLUS: F.softplus,
    ir.Builtin.ABS: torch.abs,
    ir.Builtin.FLOOR: torch.floor,
}
_BINARY: dict[ir.BinOp, Callable[[Tensor, Tensor], Tensor]] = {
    ir.BinOp.ADD: torch.add,
    ir.BinOp.SUB: torch.sub,
    ir.BinOp.MUL: torch.mul,
    ir.BinOp.DIV: torch.div,
    ir.BinOp.POW: torch.pow,
}


class ExprCompiler(ir.ExprFold[Closure]):
    """Turn the IR expressions of one model into closures.

    :param ir: the checked model.
    :param nets: the built nets by name (called with ``t / T`` for time inputs).
    :param device: where constants live.
    """

    def __init__(
        self, model: ModelIR, nets: dict[str, torch.nn.Module], device: torch.device
    ) -> None:
        self.ir = model
        self.nets = nets
        self.device = device
        self._steps = self.constant(model.steps)
        self._bound: dict[str, Closure] = {}  # a schedule's parameters while its body is folded

    def constant(self, value: float) -> Tensor:
        # float64 0-dim constants: combined with batched tensors they take the batch's dtype
        # (float32 or float64) without first being rounded to float32.
        return torch.tensor(float(value), device=self.device, dtype=torch.float64)

    def compile(self, node: ir.Expr) -> Closure:
        """A closure computing ``node``."""
        return self.fold(node)

    # ------------------------------------------------------------------ leaves
    def const(self, node: ir.Const) -> Closure:
        value = self.constant(node.value)
        return lambda env: value

    def param(self, node: ir.Param) -> Closure:
        if node.kind is ir.ParamKind.LEVEL:
            return lambda env: env.t
        if node.kind is ir.ParamKind.STEPS:
            steps = self._steps
            return lambda env: steps
        raise DtgRuntimeError("per-position parameters cannot be compiled yet")

    def var(self, node: ir.Var) -> Closure:
        return self._bound[node.name]

    def level_ref(self, node: ir.LevelRef) -> Closure:
        key = node.level.key
        return lambda env: env.levels[key]

    # ------------------------------------------------------------------ operators
    def binary(self, node: ir.Binary, left: Closure, right: Closure) -> Closure:
        op = _BINARY[node.op]

        def binary(env: Env) -> Tensor:
            a, b = align(left(env), right(env))
            return op(a, b)

        return binary

    def neg(self, node: ir.Neg, operand: Closure) -> Closure:
        return lambda env: -operand(env)

    def vector(self, node: ir.Vector, *items: Closure) -> Closure:
        def vector(env: Env) -> Tensor:
            values = [i(env) for i in items]
            values = [v.expand(env.batch) if v.dim() == 0 else v for v in values]
            return torch.stack(values, dim=-1)

        return vector

    def index(self, node: ir.Index, base: Closure) -> Closure:
        key = (slice(None), *node.items)  # the batch dimension first

        return lambda env: base(env)[key]

    # ------------------------------------------------------------------ calls
    def schedule_call(self, node: ir.ScheduleCall, *args: Closure) -> Closure:
        # Inlined at compile time: the body's parameters become the argument closures, so a
        # call costs nothing at run time (no environment per call, as in the level loop of TB).
        definition = self.ir.schedule_defs[node.name]
        outer, self._bound = self._bound, dict(zip(definition.params, args, strict=True))
        try:
            return self.fold(definition.body)
        finally:
            self._bound = outer

    def call(self, node: ir.Call, *args: Closure) -> Closure:
        fn = node.fn
        if fn in _ELEMENTWISE:
            unary, arg = _ELEMENTWISE[fn], args[0]
            return lambda env: unary(arg(env))
        if fn in (ir.Builtin.MIN, ir.Builtin.MAX):
            first, second = args
            pick = torch.minimum if fn is ir.Builtin.MIN else torch.maximum

            def extremum(env: Env) -> Tensor:
                a, b = align(first(env), second(env))
                return pick(a, b)

            return extremum
        arg = args[0]
        reduce = torch.sum if fn is ir.Builtin.SUM else torch.mean

        def reduction(env: Env) -> Tensor:
            value = arg(env)
            return reduce(value.flatten(1), dim=1) if value.dim() > 1 else value

        return reduction

    def net_call(self, node: ir.NetCall, *args: Closure) -> Closure:
        nets, name = self.nets, node.net  # looked up per call: objectives may swap in targets
        spec = self.ir.nets[name]
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

    def reward_grad(self, node: ir.RewardGrad, arg: Closure) -> Closure:
        """∇ log r at the level's value by autograd (see :class:`dtg.ir.expr.RewardGrad`)."""
        reward = self.ir.reward
        if reward is None:  # the checker refuses grad without a reward
            raise DtgRuntimeError("grad(…) needs the model's reward")
        log_reward = self.compile(reward.body)  # reads x[0], the level "zero"
        clip = node.clip

        def gradient(env: Env) -> Tensor:
            def at(x: Tensor) -> Tensor:
                return log_reward(Env(env.batch, env.t, {"zero": x}))

            return log_reward_and_grad(at, arg(env), clip)[1]

        return gradient

    def reward_call(self, node: ir.RewardCall, arg: Closure) -> Closure:
        if node.kind is ir.RewardKind.CLASSIFY:
            classes, vocab = list(node.classes), self.ir.message.space.vocab
            return lambda env: log_prob_classes(arg(env), classes, vocab)
        if node.kind is ir.RewardKind.TARGET:
            target = TARGETS[node.name]
            return lambda env: target.log_reward(arg(env))
        name = node.name
        registered = rewards()[name]  # the user's Python (dtg.plugins)

        def plugin(env: Env) -> Tensor:
            value = registered(arg(env))
            if not isinstance(value, Tensor) or value.shape != (env.batch,):
                shape = tuple(value.shape) if isinstance(value, Tensor) else type(value)
                raise DtgRuntimeError(
                    f"the plug-in reward '{name}' must return a tensor of shape "
                    f"[{env.batch}] (one log-reward per sample), got {shape}"
                )
            return value

        return plugin

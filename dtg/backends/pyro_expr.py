"""Typed IR expressions → torch source text, for the emitted Pyro module (``--emit pyro``)."""

from __future__ import annotations

from ..errors import DtgRuntimeError
from ..ir import ModelIR, Space
from ..ir import expr as ir

__all__ = ["TorchEmitter", "Env", "NUM", "CONST", "unsupported", "space_code", "level_name"]

NUM, CONST = "num", "const"  # a Python number; a 0-dim tensor. An int r: a [B, r dims] tensor.
Kind = str | int
Env = dict[str, tuple[str, Kind]]
Emitted = tuple[str, Kind, int]  # code, kind, binding strength of its outermost operator
_PREC = {"+": 1, "-": 1, "*": 2, "/": 2, "neg": 3, "^": 4, "atom": 5}
_ATOM = _PREC["atom"]
_ELEMENTWISE = {
    ir.Builtin.SQRT, ir.Builtin.EXP, ir.Builtin.LOG, ir.Builtin.COS, ir.Builtin.SIN,
    ir.Builtin.TANH, ir.Builtin.SIGMOID, ir.Builtin.ABS, ir.Builtin.SOFTPLUS,
    ir.Builtin.FLOOR,
}  # fmt: skip
_LEVEL_NAMES = {"zero": "x0", "prev": "x_prev", "next": "x_next"}


def level_name(key: str) -> str:
    """The emitted variable of a level (:attr:`dtg.ir.expr.Level.key`).

    :param key: ``zero``, ``prev``, ``next`` (a template's levels) or ``@k`` (the fixed level k).
    :returns: ``x0``, ``x_prev``, ``x_next`` or ``xk`` (``@2`` → ``x2``).
    """
    return _LEVEL_NAMES.get(key) or f"x{key.removeprefix('@')}"


def unsupported(ir: ModelIR, what: str) -> DtgRuntimeError:
    """:returns: the error for a part of ``ir`` that ``--emit pyro`` does not write."""
    return DtgRuntimeError(
        f"model '{ir.name}': --emit pyro cannot write {what}",
        ir.span,
        hints=["--emit pyro writes Gaussian families (linear-Gaussian, Normal, Guess) and a "
               "level's own Categorical x[0] only; CompiledModel.pyro() lowers every family "
               "in memory"],
    )  # fmt: skip


class TorchEmitter(ir.ExprFold[Emitted]):
    """Translate typed IR expressions to torch source text.

    Values follow :mod:`dtg.backends.torch.expr`, except that ``t`` is a 0-dim tensor: levels
    and net outputs are ``[B, …]``; a ``[B]`` scalar meeting ``[B, d…]`` is padded on the right.

    :param model: the checked model.
    """

    def __init__(self, model: ModelIR) -> None:
        self.ir = model
        self.env: Env = {}
        self.used: dict[str, str] = {}  # schedule name -> its def, dependencies first
        self.targets = False
        self.grads = False  # grad(logr, x[t]) is used: the module defines reward_grad

    def emit(self, node: ir.Expr, env: Env, needed: int = 0) -> tuple[str, Kind]:
        """The code of ``node`` (parenthesised if it binds looser than ``needed``) and its kind:
        :data:`NUM`, :data:`CONST` or the number of value dims after the batch."""
        outer, self.env = self.env, env
        try:
            code, kind, strength = self.fold(node)
        finally:
            self.env = outer
        return (f"({code})" if strength < needed else code), kind

    @staticmethod
    def _wrap(emitted: Emitted, needed: int) -> tuple[str, Kind]:
        code, kind, strength = emitted
        return (f"({code})" if strength < needed else code), kind

    # ------------------------------------------------------------------ leaves
    def const(self, node: ir.Const) -> Emitted:
        if node.text in ("pi", "e"):
            return f"math.{node.text}", NUM, _ATOM
        return (node.text or repr(node.value)), NUM, _ATOM

    def param(self, node: ir.Param) -> Emitted:
        if node.kind is ir.ParamKind.STEPS:
            return "T", NUM, _ATOM
        if "t" not in self.env:
            raise unsupported(self.ir, "the level t here")
        return (*self.env["t"], _ATOM)

    def var(self, node: ir.Var) -> Emitted:
        return (*self.env[node.name], _ATOM)

    def level_ref(self, node: ir.LevelRef) -> Emitted:
        key = level_name(node.level.key)
        if key not in self.env:
            raise unsupported(self.ir, f"the level {node.message}[{node.level.text()}] here")
        return (*self.env[key], _ATOM)

    # ------------------------------------------------------------------ operators
    def neg(self, node: ir.Neg, operand: Emitted) -> Emitted:
        code, kind = self._wrap(operand, _PREC["neg"])
        return f"-{code}", kind, _PREC["neg"]

    def binary(self, node: ir.Binary, left: Emitted, right: Emitted) -> Emitted:
        power = node.op is ir.BinOp.POW
        strength = _PREC[node.op.value]
        a_code, a = self._wrap(left, _ATOM if power else strength)
        b_code, b = self._wrap(right, _PREC["neg"] if power else strength + 1)
        a_code, b_code, kind = self._align(a_code, a, b_code, b)
        return f"{a_code} {'**' if power else node.op.value} {b_code}", kind, strength

    def vector(self, node: ir.Vector, *items: Emitted) -> Emitted:
        batched = [self._batched(code, kind) for code, kind, _ in items]
        rank = max(k for _, k in batched) + 1
        return f"torch.stack([{', '.join(c for c, _ in batched)}], -1)", rank, _ATOM

    def index(self, node: ir.Index, base: Emitted) -> Emitted:
        code, kind = self._wrap(base, _ATOM)
        parts = ([":"] if isinstance(kind, int) else []) + node.item_texts()
        drop = sum(not isinstance(i, slice) for i in node.items)
        return f"{code}[{', '.join(parts)}]", kind - drop if isinstance(kind, int) else kind, _ATOM

    @staticmethod
    def _batched(code: str, kind: Kind) -> tuple[str, int]:
        """``[B]`` from a number or a 0-dim tensor (``code`` must be an atom)."""
        if kind == NUM:
            return f"torch.full((batch,), {code})", 0
        return (f"{code}.expand(batch)", 0) if kind == CONST else (code, int(kind))

    @staticmethod
    def _align(left: str, a: Kind, right: str, b: Kind) -> tuple[str, str, Kind]:
        if isinstance(a, int) and isinstance(b, int) and a != b:
            left, right = (
                (f"_pad({left}, {b - a})", right) if a < b else (left, f"_pad({right}, {a - b})")
            )
        ranks = [k for k in (a, b) if isinstance(k, int)]
        return left, right, max(ranks) if ranks else (NUM if a == b == NUM else CONST)

    # ------------------------------------------------------------------ calls
    def schedule_call(self, node: ir.ScheduleCall, *args: Emitted) -> Emitted:
        self._schedule(node.name)
        ranks = [k for _, k, _ in args if isinstance(k, int)]
        code = f"{node.name}({', '.join(c for c, _, _ in args)})"
        return code, max(ranks) if ranks else CONST, _ATOM

    def call(self, node: ir.Call, *args: Emitted) -> Emitted:
        func = node.fn.value
        if node.fn in _ELEMENTWISE:
            code, kind, _ = args[0]
            if kind == NUM and func not in ("sigmoid", "softplus", "abs"):
                return f"math.{func}({code})", NUM, _ATOM
            name = "torch.nn.functional.softplus" if func == "softplus" else f"torch.{func}"
            code = f"torch.tensor({code})" if kind == NUM else code
            return f"{name}({code})", CONST if kind == NUM else kind, _ATOM
        if node.fn in (ir.Builtin.MIN, ir.Builtin.MAX):
            (a, ka, _), (b, kb, _) = args
            if NUM in (ka, kb) and ka != kb:  # a tensor clamped by a number
                tensor, number, kind = (a, b, ka) if kb == NUM else (b, a, kb)
                bound = "max" if func == "min" else "min"
                return f"torch.clamp({tensor}, {bound}={number})", kind, _ATOM
            if ka == kb == NUM:
                return f"{func}({a}, {b})", NUM, _ATOM
            a, b, kind = self._align(a, ka, b, kb)
            return f"torch.{func}imum({a}, {b})", kind, _ATOM
        code, kind, _ = args[0]  # sum, mean over one example's dimensions
        if isinstance(kind, int) and kind:
            return f"{code}.flatten(1).{func}(1)", 0, _ATOM
        return code, kind, _ATOM

    def net_call(self, node: ir.NetCall, *args: Emitted) -> Emitted:
        """``nets["NAME"](…)``; a ``time`` input gets ``t / T`` per example (``[B]``)."""
        spec, codes = self.ir.nets[node.net], []
        for space, arg in zip(spec.inputs, args, strict=True):
            if space.kind != "time":
                codes.append(arg[0])
                continue
            code, kind = self._wrap(arg, _PREC["/"])
            codes.append(
                self._batched(f"({code} / T)", kind)[0] if kind in (NUM, CONST) else f"{code} / T"
            )
        return f'nets["{node.net}"]({", ".join(codes)})', len(spec.output.shape), _ATOM

    def reward_call(self, node: ir.RewardCall, arg: Emitted) -> Emitted:
        if node.kind is not ir.RewardKind.TARGET:
            raise unsupported(self.ir, f"a call to {node.name}")
        self.targets = True
        return f'TARGETS["{node.name}"].log_reward({arg[0]})', 0, _ATOM

    def reward_grad(self, node: ir.RewardGrad, arg: Emitted) -> Emitted:
        self.grads = True
        return f"reward_grad({arg[0]}, {node.clip!r})", len(node.space.shape), _ATOM

    def _schedule(self, name: str) -> None:
        if name in self.used:
            return
        definition = self.ir.schedule_defs[name]
        params = definition.params
        self.used[name] = ""  # reserved: its dependencies are emitted before it
        code, kind = self.emit(definition.body, {p: (p, CONST) for p in params})
        del self.used[name]
        head = "".join(f"    {p} = torch.as_tensor({p}, dtype=torch.float32)\n" for p in params)
        self.used[name] = (
            f"def {name}({', '.join(params)}):\n"
            f'    """schedule {name}({", ".join(params)}) = {definition.text}"""\n'
            f"{head}    return {f'torch.as_tensor({code})' if kind == NUM else code}\n"
        )


def space_code(space: Space) -> str:
    """Python source that rebuilds ``space`` in the emitted module."""
    return f"Space({str(space.kind)!r}, {tuple(space.shape)!r}, {space.vocab!r})"

"""``emit_pyro(ir) -> str``: a checked model as readable, self-contained Pyro source.

The emitted module imports ``math``, ``uuid``, ``torch``, ``pyro`` and :func:`dtg.nets.build_net`
(and :data:`dtg.targets.TARGETS` when a reward names a built-in target). It defines ``nets``,
``load_weights(state_dict)``, the kernels ``destroy``/``generate``/``start`` and Pyro's
``model(data=None, n=None)`` / ``guide(data=None, n=None)`` with the sites of
:mod:`dtg.backends.pyro`. Linear-Gaussian tables are inlined as lists, ``Guess`` is written out
from the posterior tables, general ``Normal`` kernels and schedules are translated from the AST
to torch (:class:`TorchEmitter`). Gaussian families and real starts only; others raise.
"""

from __future__ import annotations

import math
import re
from string import Template
from typing import Any

import numpy as np

from ..errors import DtgRuntimeError
from ..ir import Family, ModelIR
from ..nets import Signature
from ..symbolic import T_SYMBOL, SympyBuilder
from ..syntax import ast
from ..syntax.printer import expr_to_source

__all__ = ["emit_pyro", "TorchEmitter", "table"]

NUM, CONST = "num", "const"  # a Python number; a 0-dim tensor. An int r: a [B, r dims] tensor.
Kind = str | int
Env = dict[str, tuple[str, Kind]]
_PREC = {"+": 1, "-": 1, "*": 2, "/": 2, "neg": 3, "^": 4, "atom": 5}
_FUNCS = {"sqrt", "exp", "log", "cos", "sin", "tanh", "sigmoid", "abs", "softplus"}


def _unsupported(ir: ModelIR, what: str) -> DtgRuntimeError:
    return DtgRuntimeError(
        f"model '{ir.name}': --emit pyro cannot write {what}",
        ir.span,
        hints=["--emit pyro writes Gaussian families (linear-Gaussian, Normal, Guess) only; "
               "CompiledModel.pyro() lowers every family in memory"],
    )  # fmt: skip


class TorchEmitter:
    """Translate checked AST expressions to torch source text.

    Values follow :mod:`dtg.runtime.expr`, except that ``t`` is a 0-dim tensor: levels and net
    outputs are ``[B, …]``; a ``[B]`` scalar meeting ``[B, d…]`` is padded on the right.

    :param ir: the checked model; :param statements: its (and its parents') statements.
    """

    def __init__(self, ir: ModelIR, statements: list[Any]) -> None:
        self.ir = ir
        self.schedules = {s.name: s for s in statements if isinstance(s, ast.Schedule)}
        self.builder = SympyBuilder(ir.steps, ir.steps_name, {}, ir.message.name)
        self.used: dict[str, str] = {}  # schedule name -> its def, dependencies first
        self.targets = False

    def emit(self, node: Any, env: Env, needed: int = 0) -> tuple[str, Kind]:
        """The code of ``node`` (parenthesised if it binds looser than ``needed``) and its kind:
        :data:`NUM`, :data:`CONST` or the number of value dims after the batch."""
        code, kind, strength = self._emit(node, env)
        return (f"({code})" if strength < needed else code), kind

    def _emit(self, node: Any, env: Env) -> tuple[str, Kind, int]:
        atom = _PREC["atom"]
        if isinstance(node, ast.Number):
            return (node.text or repr(node.value)), NUM, atom
        if isinstance(node, ast.Name):
            names = {self.ir.steps_name: ("T", NUM), "pi": ("math.pi", NUM), "e": ("math.e", NUM)}
            if node.id not in env and node.id not in names:
                raise _unsupported(self.ir, f"the name '{node.id}'")
            return (*(env.get(node.id) or names[node.id]), atom)
        if isinstance(node, ast.Unary):
            code, kind = self.emit(node.operand, env, _PREC["neg"])
            return (f"-{code}" if node.op == "-" else code), kind, _PREC["neg"]
        if isinstance(node, ast.Binary):
            power = node.op == "^"
            strength = _PREC[node.op]
            left, a = self.emit(node.left, env, atom if power else strength)
            right, b = self.emit(node.right, env, _PREC["neg"] if power else strength + 1)
            left, right, kind = self._align(left, a, right, b)
            return f"{left} {'**' if power else node.op} {right}", kind, strength
        if isinstance(node, ast.Call):
            return (*self._call(node, env), atom)
        if isinstance(node, ast.Subscript):
            return (*self._subscript(node, env), atom)
        if isinstance(node, ast.Vector):
            items = [self._batched(*self.emit(i, env)) for i in node.items]
            rank = max(k for _, k in items) + 1
            return f"torch.stack([{', '.join(c for c, _ in items)}], -1)", rank, atom
        raise _unsupported(self.ir, f"the expression {expr_to_source(node)}")

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

    def _call(self, node: ast.Call, env: Env) -> tuple[str, Kind]:
        func = node.func
        if func in self.ir.nets:
            return self._net(node, env)
        args = [self.emit(a, env) for a in node.args]
        if func in self.schedules:
            self._schedule(func)
            ranks = [k for _, k in args if isinstance(k, int)]
            return f"{func}({', '.join(c for c, _ in args)})", max(ranks) if ranks else CONST
        if func in _FUNCS:
            code, kind = args[0]
            if kind == NUM and func not in ("sigmoid", "softplus", "abs"):
                return f"math.{func}({code})", NUM
            name = "torch.nn.functional.softplus" if func == "softplus" else f"torch.{func}"
            code = f"torch.tensor({code})" if kind == NUM else code
            return f"{name}({code})", CONST if kind == NUM else kind
        if func in ("min", "max"):
            (a, ka), (b, kb) = args
            if NUM in (ka, kb) and ka != kb:  # a tensor clamped by a number
                tensor, number, kind = (a, b, ka) if kb == NUM else (b, a, kb)
                return f"torch.clamp({tensor}, {'max' if func == 'min' else 'min'}={number})", kind
            if ka == kb == NUM:
                return f"{func}({a}, {b})", NUM
            a, b, kind = self._align(a, ka, b, kb)
            return f"torch.{func}imum({a}, {b})", kind
        if func in ("sum", "mean"):
            code, kind = args[0]
            return (
                (f"{code}.flatten(1).{func}(1)", 0) if isinstance(kind, int) and kind else args[0]
            )
        from ..targets import TARGETS

        if func in TARGETS:
            self.targets = True
            return f'TARGETS["{func}"].log_reward({args[0][0]})', 0
        raise _unsupported(self.ir, f"a call to {func}")

    def _net(self, node: ast.Call, env: Env) -> tuple[str, Kind]:
        """``nets["NAME"](…)``; a ``time`` input gets ``t / T`` per example (``[B]``)."""
        spec, codes = self.ir.nets[node.func], []
        for space, arg in zip(spec.inputs, node.args, strict=True):
            if space.kind != "time":
                codes.append(self.emit(arg, env)[0])
                continue
            code, kind = self.emit(arg, env, _PREC["/"])
            codes.append(
                self._batched(f"({code} / T)", kind)[0] if kind in (NUM, CONST) else f"{code} / T"
            )
        return f'nets["{node.func}"]({", ".join(codes)})', len(spec.output.shape)

    def _subscript(self, node: ast.Subscript, env: Env) -> tuple[str, Kind]:
        if isinstance(node.base, ast.Name) and node.base.id == self.ir.message.name:
            level = self.builder.index(node.indices[0])
            names = {0: "x0", T_SYMBOL - 1: "x_prev", T_SYMBOL: "x_next"}
            key = next((v for k, v in names.items() if level - k == 0), None)
            if key not in env:
                raise _unsupported(self.ir, f"the level {expr_to_source(node)} here")
            return env[key]
        code, kind = self.emit(node.base, env, _PREC["atom"])
        parts = [":"] if isinstance(kind, int) else []
        parts += [expr_to_source(i).replace(" ", "") for i in node.indices]
        drop = sum(not isinstance(i, ast.Slice) for i in node.indices)
        return f"{code}[{', '.join(parts)}]", kind - drop if isinstance(kind, int) else kind

    def _schedule(self, name: str) -> None:
        if name in self.used:
            return
        schedule, params = self.schedules[name], self.schedules[name].params
        self.used[name] = ""  # reserved: its dependencies are emitted before it
        code, kind = self.emit(schedule.body, {p: (p, CONST) for p in params})
        del self.used[name]
        head = "".join(f"    {p} = torch.as_tensor({p}, dtype=torch.float32)\n" for p in params)
        self.used[name] = (
            f"def {name}({', '.join(params)}):\n"
            f'    """schedule {name}({", ".join(params)}) = {expr_to_source(schedule.body)}"""\n'
            f"{head}    return {f'torch.as_tensor({code})' if kind == NUM else code}\n"
        )


def _statements(ir: ModelIR) -> list[Any]:
    chain, node = [], ir
    while node is not None:
        chain.append(node)
        node = node.parent
    return [s for model in reversed(chain) for s in model.model.statements]


def table(name: str, values: np.ndarray, per_line: int = 4) -> str:
    """``NAME = [v0, v1, …]`` at full float64 precision (``nan`` → 0.0, as in the buffers)."""
    items = [repr(float(v)) if math.isfinite(v) else "0.0" for v in values]
    lines = [", ".join(items[i : i + per_line]) for i in range(0, len(items), per_line)]
    return f"{name} = [\n" + "".join(f"    {line},\n" for line in lines) + "]\n"


_NORMAL = Template('''def $role($src, level):
    """$what at t = level: $body"""
    t = torch.tensor(float(level))
    batch = $src.shape[0]
    shape = $shape
    mean = $mean
    std = $std
    return _normal(_full(mean, batch, shape), _full(std, batch, shape), len(shape))
''')
_GUESS = Template('''def generate(x_next, level):
    """p(x[t-1] | x[t]) = q(x[t-1] | x[t], x̂[0]) at t = level: $body"""
    out = nets["$net"](x_next$time)
    x0 = $x0  # x̂[0]
    mean = POST_X0[level] * x0 + POST_XT[level] * x_next
    var = $var
    if var <= 0:  # the decoder p(x[0] | x[1]) uses β_1
        var = BETA[level]
    return _normal(mean, math.sqrt(var), len(DATA_SHAPE if level == 1 else LEVEL_SHAPE))
''')
_X0 = {
    "epsilon": "(x_next - SIGMA[level] * out) / MEAN[level]",
    "sample": "out",
    "v_prediction": "(MEAN[level] * x_next - SIGMA[level] * out)"
    " / (MEAN[level] ** 2 + SIGMA[level] ** 2)",
}


def _normal_kernel(role: str, channel: Any, emitter: TorchEmitter) -> str:
    message = emitter.ir.message
    src, rank = (
        ("x_prev", len(message.space.shape))
        if role == "destroy"
        else ("x_next", len(message.level_space.shape))
    )
    args = dict(zip(("mean", "std"), channel.body.args, strict=False))
    args.update({k.name: k.value for k in channel.body.kwargs})
    env = {"t": ("t", CONST), src: (src, rank)}
    text = _NORMAL.substitute(
        role=role, src=src, body=expr_to_source(channel.body),
        what="q(x[t] | x[t-1])" if role == "destroy" else "p(x[t-1] | x[t])",
        shape="LEVEL_SHAPE" if role == "destroy" else "DATA_SHAPE if level == 1 else LEVEL_SHAPE",
        mean=emitter.emit(args["mean"], env)[0], std=emitter.emit(args["std"], env)[0],
    )  # fmt: skip
    return (
        text
        if re.search(r"\bt\b", text.split("batch = ")[1])
        else text.replace("    t = torch.tensor(float(level))\n", "")
    )


def _kernels(ir: ModelIR, emitter: TorchEmitter) -> list[str]:
    """The source of ``destroy``, ``generate`` and ``start``, with their tables."""
    destroy, generate, start = ir.destroy, ir.generate, ir.start
    parts = []
    if destroy.family is Family.LINEAR_GAUSSIAN:
        parts += [table("A", destroy.tables["a"]), table("S", destroy.tables["s"])]
        parts.append(
            "def destroy(x_prev, level):\n"
            f'    """q(x[t] | x[t-1]) = N(A[t] x[t-1], S[t]²): {expr_to_source(destroy.body)}"""\n'
            "    return _normal(A[level] * x_prev, S[level], len(LEVEL_SHAPE))\n"
        )
    elif destroy.family is Family.NORMAL:
        parts.append(_normal_kernel("destroy", destroy, emitter))
    else:
        raise _unsupported(ir, f"a {destroy.family.label} destruction")
    if generate.family is Family.GUESS and destroy.family is Family.LINEAR_GAUSSIAN:
        m, options = ir.marginals, generate.options
        sigma = np.sqrt(np.maximum(np.nan_to_num(m["var"]), 0.0))
        tables = {"MEAN": m["mean"], "SIGMA": sigma, "BETA": m["beta"]}
        tables.update({k.upper(): m[k] for k in ("post_x0", "post_xt", "post_var")})
        parts += [table(name, values) for name, values in tables.items()]
        timed = any(s.kind == "time" for s in ir.nets[options["net"]].inputs)
        clip = options.get("clip")
        x0 = _X0[options["predict"]]
        x0 = x0 if clip is None else f"({x0}).clamp(-{clip}, {clip})"
        parts.append(_GUESS.substitute(
            body=expr_to_source(generate.body), net=options["net"],
            time=", torch.full((x_next.shape[0],), level / T)" if timed else "",
            x0=x0, var="BETA[level]" if options["variance"] == "beta" else "POST_VAR[level]",
        ))  # fmt: skip
    elif generate.family is Family.NORMAL:
        parts.append(_normal_kernel("generate", generate, emitter))
    else:
        raise _unsupported(ir, f"a {generate.family.label} generation kernel")
    if start.family is Family.NORMAL:
        mean, std = float(start.params["mean"]), float(start.params["std"])
    elif start.family is Family.SINGLETON and start.params.get("value") != "masked":
        mean, std = float(start.params["value"]), 0.0
    else:
        raise _unsupported(ir, f"a {start.family.label} start")
    return parts + [
        f'def start(batch):\n    """p(x[T]): {expr_to_source(start.body)}"""\n'
        f"    value = torch.full((batch, *LEVEL_SHAPE), {mean!r})\n"
        f"    return _normal(value, {std!r}, len(LEVEL_SHAPE))\n"
    ]


_MODULE = Template('''"""Pyro model and guide of the dtg model ``$name`` (dtg compile --emit pyro).

Sites in pyro.plate("batch", B): the model draws $sites (x_0 observed given data), the guide
x_1 … x_T from x_0 = data; values are [B, *shape]. Load the nets of a compiled model with
``load_weights(model.state_dict())``; then use ``model``/``guide`` with SVI, Predictive, …
"""

import math
import uuid

import pyro
import pyro.distributions as dist
import torch

from dtg.nets import Signature, build_net
$imports
NAME = "$name"
T = $steps
DATA_SHAPE = $data_shape
LEVEL_SHAPE = $level_shape
PREFIX = f"{NAME}.{uuid.uuid4().hex[:8]}"  # unique per import: no shared param-store entries

nets = torch.nn.ModuleDict({
$nets})


def load_weights(state_dict):
    """Load the nets from a compiled model's ``state_dict`` (keys ``nets.NAME.…``)."""
    state = {k[5:]: v for k, v in state_dict.items() if k.startswith("nets.")}
    nets.load_state_dict(state or state_dict)


def _pad(value, dims):
    """A ``[B]`` per-example scalar padded on the right to meet ``[B, d…]`` values."""
    return value.reshape(value.shape + (1,) * dims)


def _full(value, batch, shape):
    """A kernel parameter (number, 0-dim, ``[B]`` or full) broadcast to ``[batch, *shape]``."""
    value = torch.as_tensor(value, dtype=torch.get_default_dtype())
    full = (batch, *shape)
    if value.dim() <= 1:
        value = value.reshape(value.shape + (1,) * (len(full) - value.dim()))
    return value.expand(full)


def _normal(mean, std, event_dim):
    """Normal(mean, std) over the last ``event_dim`` dims; std 0 is a point (a Delta site)."""
    if (std == 0) if isinstance(std, float) else bool((std == 0).all()):
        return dist.Delta(mean, event_dim=event_dim)
    return dist.Normal(mean, std).to_event(event_dim)
$definitions

def model(data=None, n=None):
    """Generation p: x_T from the start, then x_{t-1} for t = T … 1; x_0 observed given data."""
    batch = data.shape[0] if data is not None else n
$register_model    with pyro.plate("batch", batch):
        x = pyro.sample(f"x_{T}", start(batch))
        for level in range(T, 0, -1):
            obs = data if level == 1 else None
            x = pyro.sample(f"x_{level - 1}", generate(x, level), obs=obs)
$factor    return x


def guide(data=None, n=None):
    """Destruction q: x_1 … x_T from x_0 = data."""
$register_guide    with pyro.plate("batch", data.shape[0]):
        x = data
        for level in range(1, T + 1):
            x = pyro.sample(f"x_{level}", destroy(x, level))
    return x
''')


def emit_pyro(ir: ModelIR) -> str:
    """The Pyro model and guide of ``ir`` as the source of a Python module.

    :param ir: a checked model.
    :raises DtgRuntimeError: for a family the emitter does not write (discrete ones).
    :returns: the module's source (``docs/pyro.md`` describes its names and sites).
    """
    emitter = TorchEmitter(ir, _statements(ir))
    definitions = _kernels(ir, emitter)
    if ir.reward is not None:
        env: Env = {"x0": ("x0", len(ir.message.space.shape))}
        env.update({ir.reward.param: env["x0"]} if ir.reward.param else {})
        definitions.append(
            f'def log_reward(x0):\n    """log r(x[0]): {expr_to_source(ir.reward.body)}"""\n'
            "    batch = x0.shape[0]\n"
            f"    return _full({emitter.emit(ir.reward.body, env)[0]}, batch, ())\n"
        )
    nets = "".join(
        f'    "{name}": build_net(\n        {spec.arch!r},\n        {dict(spec.options)!r},\n'
        f"        {tuple(Signature(s.kind, s.shape, s.vocab) for s in spec.inputs)!r},\n"
        f"        {Signature(spec.output.kind, spec.output.shape, spec.output.vocab)!r},\n    ),\n"
        for name, spec in ir.nets.items()
    )
    register = {
        role: "".join(
            f'    pyro.module(PREFIX + ".{n}", nets["{n}"])\n' for n in dict.fromkeys(names)
        )
        for role, names in (("model", ir.start.nets + ir.generate.nets), ("guide", ir.destroy.nets))
    }
    levels = [ir.steps, ir.steps - 1, "…", 0] if ir.steps > 2 else range(ir.steps, -1, -1)
    source = _MODULE.substitute(
        name=ir.name, steps=ir.steps, nets=nets,
        sites=", ".join(str(t) if t == "…" else f'"x_{t}"' for t in levels),
        imports="from dtg.targets import TARGETS\n" if emitter.targets else "",
        data_shape=repr(tuple(ir.message.space.shape)),
        level_shape=repr(tuple(ir.message.level_space.shape)),
        definitions="".join(f"\n\n{code}" for code in [*emitter.used.values(), *definitions]),
        register_model=register["model"], register_guide=register["guide"],
        factor="" if ir.reward is None else '        pyro.factor("log_reward", log_reward(x))\n',
    )  # fmt: skip
    return (
        source
        if "math." in source.split("import uuid")[1]
        else source.replace("import math\n", "", 1)
    )

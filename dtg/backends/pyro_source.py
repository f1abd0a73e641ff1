"""``emit_pyro(ir) -> str``: a checked model as readable, self-contained Pyro source.

The emitted module imports ``math``, ``uuid``, ``torch``, ``pyro`` and :func:`dtg.nets.build_net`
(and :data:`dtg.targets.TARGETS` when a reward names a built-in target). It defines ``nets``,
``load_weights(state_dict)``, the kernels ``destroy``/``generate``/``start`` and Pyro's
``model(data=None, n=None)`` / ``guide(data=None, n=None)`` with the sites of
:mod:`dtg.backends.pyro`. Linear-Gaussian tables are inlined as lists, ``Guess`` is written out
from the posterior tables, general ``Normal`` kernels and schedules are translated from the typed IR
to torch (:class:`TorchEmitter`). Gaussian families and real starts only; others raise.

With kernels for single levels (``destroy x[1] ~ …``, a hierarchical VAE) the module has
``LEVEL_SHAPES`` (x[0] … x[T]) instead of ``LEVEL_SHAPE``, each level's own kernel as
``destroy_xK(xJ)`` / ``generate_xK(xJ)`` (defines x[K], reads x[J]; a token x[0] may be
``Categorical``), the templates as ``destroy_t``/``generate_t`` for the levels they cover, and
``destroy(x, level)``/``generate(x, level)`` choosing a level's kernel.
"""

from __future__ import annotations

import math
import re
from string import Template
from typing import Any

import numpy as np

from ..ir import Family, ModelIR
from .pyro_expr import CONST, Env, TorchEmitter, space_code, unsupported

__all__ = ["emit_pyro", "TorchEmitter", "table"]


def _number(value: float) -> str:
    return repr(float(value)) if math.isfinite(value) else "0.0"


def _nested(values: np.ndarray) -> str:
    if values.ndim == 0:
        return _number(values)
    return "[" + ", ".join(_nested(row) for row in values) + "]"


def table(name: str, values: np.ndarray, per_line: int = 4) -> str:
    """``NAME = [v0, v1, …]`` at full float64 precision (``nan`` → 0.0, as in the buffers).

    A per-coordinate table ``[T + 1, *shape]`` becomes ``NAME = torch.tensor([[…], …])``, one
    row per level, so that ``NAME[level]`` is a ``[*shape]`` tensor.
    """
    if values.ndim > 1:
        rows = "".join(f"    {_nested(row)},\n" for row in values)
        return f"{name} = torch.tensor([\n{rows}])\n"
    items = [_number(v) for v in values]
    lines = [", ".join(items[i : i + per_line]) for i in range(0, len(items), per_line)]
    return f"{name} = [\n" + "".join(f"    {line},\n" for line in lines) + "]\n"


_NORMAL = Template('''def $name($params):
    """$what: $body"""
    t = torch.tensor($time)
    batch = $src.shape[0]
    shape = $shape
    mean = $mean
    std = $std
    return _normal(_full(mean, batch, shape), _full(std, batch, shape), len(shape))
''')
_CATEGORICAL = Template('''def $name($src):
    """$what: $body"""
    t = torch.tensor($time)
    batch = $src.shape[0]
    shape = $shape
    logits = _full($logits, batch, (*shape, $vocab))
    return dist.Categorical(logits=logits).to_event(len(shape))
''')
_GUESS = Template('''def generate(x_next, level):
    """p(x[t-1] | x[t]) = q(x[t-1] | x[t], x̂[0]) at t = level: $body"""
    out = nets["$net"](x_next$time)
    x0 = $x0  # x̂[0]
    mean = POST_X0[level] * x0 + POST_XT[level] * x_next
    var = $var
$variance
    return _normal(mean, $std, len(DATA_SHAPE if level == 1 else LEVEL_SHAPE))
''')
_VARIANCE = {  # where the posterior variance is 0, the decoder p(x[0] | x[1]) uses β_1
    False: "    if var <= 0:  # the decoder p(x[0] | x[1]) uses β_1\n        var = BETA[level]",
    True: "    var = torch.where(var > 0, var, BETA[level])  # the decoder p(x[0] | x[1]) uses β_1",
}
_X0 = {
    "epsilon": "(x_next - SIGMA[level] * out) / MEAN[level]",
    "sample": "out",
    "v_prediction": "(MEAN[level] * x_next - SIGMA[level] * out)"
    " / (MEAN[level] ** 2 + SIGMA[level] ** 2)",
}
_WHAT = {"destroy": "q(x[t] | x[t-1])", "generate": "p(x[t-1] | x[t])"}


def _drop_unused_t(text: str) -> str:
    """Drop a kernel's ``t = …`` line when nothing after it reads ``t``."""
    if re.search(r"\bt\b", text.split("batch = ")[1]):
        return text
    return re.sub(r"    t = torch\.tensor\(.*\)\n", "", text, count=1)


def _normal_kernel(role: str, channel: Any, emitter: TorchEmitter, name: str = "") -> str:
    """A template ``Normal`` kernel ``NAME(x_prev | x_next, level)`` (``name``: the role's)."""
    ir = emitter.ir
    src = "x_prev" if role == "destroy" else "x_next"
    if ir.per_level:  # the template covers some levels; each level has its own shape
        shape = "LEVEL_SHAPES[level]" if role == "destroy" else "LEVEL_SHAPES[level - 1]"
        levels = ir.destroy_levels if role == "destroy" else ir.generate_levels
        first = next(k for k, c in enumerate(levels, start=1) if c is channel)
        rank = len(ir.message.space_at(first - 1 if role == "destroy" else first).shape)
    elif role == "destroy":
        shape, rank = "LEVEL_SHAPE", len(ir.message.space.shape)
    else:
        shape, rank = "DATA_SHAPE if level == 1 else LEVEL_SHAPE", len(ir.message.level_space.shape)
    env = {"t": ("t", CONST), src: (src, rank)}
    return _drop_unused_t(_NORMAL.substitute(
        name=name or role, params=f"{src}, level", src=src, body=channel.text,
        what=f"{_WHAT[role]} at t = level", time="float(level)", shape=shape,
        mean=emitter.emit(channel.args["mean"], env)[0],
        std=emitter.emit(channel.args["std"], env)[0],
    ))  # fmt: skip


def _own_kernel(role: str, level: int, channel: Any, emitter: TorchEmitter) -> tuple[str, str]:
    """A level's own kernel ``destroy_xK(xJ)`` / ``generate_xK(xJ)`` (K defined, J read).

    :param level: the level ``t`` it runs at: it defines ``x[t]`` (destroy) or ``x[t-1]``.
    :returns: the function's name and source.
    """
    ir = emitter.ir
    read, defined = (level - 1, level) if role == "destroy" else (level, level - 1)
    src, name = f"x{read}", f"{role}_x{defined}"
    what = f"{'q' if role == 'destroy' else 'p'}(x[{defined}] | x[{read}])"
    env = {"t": ("t", CONST), src: (src, len(ir.message.space_at(read).shape))}
    common = dict(name=name, src=src, what=what, body=channel.text, time=repr(float(level)))
    common["shape"] = f"LEVEL_SHAPES[{defined}]"
    if channel.family is Family.CATEGORICAL and role == "generate":
        vocab = int(ir.message.space_at(defined).vocab or 0)
        logits = emitter.emit(channel.args["logits"], env)[0]
        text = _CATEGORICAL.substitute(common, logits=logits, vocab=vocab)
    elif channel.family is Family.NORMAL:
        mean, std = (emitter.emit(channel.args[k], env)[0] for k in ("mean", "std"))
        text = _NORMAL.substitute(common, params=src, mean=mean, std=std)
    else:
        raise unsupported(ir, f"a {channel.family.label} kernel of {ir.message.name}[{defined}]")
    return name, _drop_unused_t(text)


def _destroy_template(ir: ModelIR, channel: Any, emitter: TorchEmitter, name: str) -> list[str]:
    """The destruction template ``NAME(x_prev, level)``, with its tables."""
    if channel.family is Family.LINEAR_GAUSSIAN:
        shape = "LEVEL_SHAPES[level]" if ir.per_level else "LEVEL_SHAPE"
        return [
            table("A", channel.tables["a"]),
            table("S", channel.tables["s"]),
            f"def {name}(x_prev, level):\n"
            f'    """q(x[t] | x[t-1]) = N(A[t] x[t-1], S[t]²): {channel.text}"""\n'
            f"    return _normal(A[level] * x_prev, S[level], len({shape}))\n",
        ]
    if channel.family is Family.NORMAL:
        return [_normal_kernel("destroy", channel, emitter, name)]
    raise unsupported(ir, f"a {channel.family.label} destruction")


def _guess(ir: ModelIR) -> list[str]:
    """``generate`` for a Gaussian ``Guess``, written out from the posterior tables."""
    m, generate = ir.marginals, ir.generate
    options = generate.options
    diagonal = m["mean"].ndim > 1  # per-coordinate tables: tensors, elementwise
    sigma = np.sqrt(np.maximum(np.nan_to_num(m["var"]), 0.0))
    tables = {"MEAN": m["mean"], "SIGMA": sigma, "BETA": m["beta"]}
    tables.update({k.upper(): m[k] for k in ("post_x0", "post_xt", "post_var")})
    timed = any(s.kind == "time" for s in ir.nets[options["net"]].inputs)
    clip = options.get("clip")
    x0 = _X0[options["predict"]]
    x0 = x0 if clip is None else f"({x0}).clamp(-{clip}, {clip})"
    return [table(name, values) for name, values in tables.items()] + [_GUESS.substitute(
        body=generate.text, net=options["net"],
        time=", torch.full((x_next.shape[0],), level / T)" if timed else "",
        x0=x0, var="BETA[level]" if options["variance"] == "beta" else "POST_VAR[level]",
        variance=_VARIANCE[diagonal], std="var.sqrt()" if diagonal else "math.sqrt(var)",
    )]  # fmt: skip


def _by_level(ir: ModelIR, role: str, emitter: TorchEmitter) -> list[str]:
    """With per-level kernels: each level's own kernel, the template ``ROLE_t`` for the levels
    it covers (if any), and ``ROLE(x, level)``, which runs the one of level ``t``."""
    levels = ir.destroy_levels if role == "destroy" else ir.generate_levels
    parts, cases, template = [], [], None
    for level, channel in enumerate(levels, start=1):
        if channel.single_level:  # "0", "1": its own
            name, code = _own_kernel(role, level, channel, emitter)
            parts.append(code)
            cases.append(f"    if level == {level}:\n        return {name}(x)\n")
        elif template is None:
            template = channel
            if role == "destroy":
                parts += _destroy_template(ir, channel, emitter, "destroy_t")
            elif channel.family is Family.NORMAL:
                parts.append(_normal_kernel("generate", channel, emitter, "generate_t"))
            else:
                raise unsupported(ir, f"a {channel.family.label} generation kernel")
    covered = [str(k) for k, c in enumerate(levels, start=1) if c is template]
    rest = (
        f"    return {role}_t(x, level)  # the template, at t = {', '.join(covered)}\n"
        if template is not None
        else '    raise ValueError(f"no kernel runs at t = {level}: t is 1 … T")\n'
    )
    return [
        *parts,
        f'def {role}(x, level):\n    """{_WHAT[role]} at t = level: the kernel of that level"""\n'
        + "".join(cases)
        + rest,
    ]


def _kernels(ir: ModelIR, emitter: TorchEmitter) -> list[str]:
    """The source of ``destroy``, ``generate`` and ``start``, with their tables."""
    destroy, generate, start = ir.destroy, ir.generate, ir.start
    if ir.per_level:
        parts = _by_level(ir, "destroy", emitter) + _by_level(ir, "generate", emitter)
    else:
        parts = _destroy_template(ir, destroy, emitter, "destroy")
        if generate.family is Family.GUESS and destroy.family is Family.LINEAR_GAUSSIAN:
            parts += _guess(ir)
        elif generate.family is Family.NORMAL:
            parts.append(_normal_kernel("generate", generate, emitter))
        else:
            raise unsupported(ir, f"a {generate.family.label} generation kernel")
    if start.family is Family.NORMAL:
        mean, std = float(start.params["mean"]), float(start.params["std"])
    elif start.family is Family.SINGLETON and start.params.get("value") != "masked":
        mean, std = float(start.params["value"]), 0.0
    else:
        raise unsupported(ir, f"a {start.family.label} start")
    shape = "LEVEL_SHAPES[T]" if ir.per_level else "LEVEL_SHAPE"
    return parts + [
        f'def start(batch):\n    """p(x[T]): {start.text}"""\n'
        f"    value = torch.full((batch, *{shape}), {mean!r})\n"
        f"    return _normal(value, {std!r}, len({shape}))\n"
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

from dtg.ir.space import Space
from dtg.nets import build_net
$imports
NAME = "$name"
T = $steps
DATA_SHAPE = $data_shape
$level_shape
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


def _level_shapes(ir: ModelIR) -> str:
    """``LEVEL_SHAPE`` (x[1] … x[T]), or with per-level kernels ``LEVEL_SHAPES`` (each level's)."""
    if not ir.per_level:
        return f"LEVEL_SHAPE = {tuple(ir.message.level_space.shape)!r}"
    shapes = ", ".join(repr(tuple(space.shape)) for space in ir.message.level_spaces)
    return f"LEVEL_SHAPES = [{shapes}]  # x[0] … x[T]"


_REWARD_GRAD = '''def reward_grad(x, clip):
    """grad(logr, x[t]): detached, non-finite entries 0, each clipped to ±clip."""
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        log_r = log_reward(x)
        g = None
        if log_r.requires_grad:  # else the reward does not depend on x
            (g,) = torch.autograd.grad(log_r.sum(), x, allow_unused=True)
    if g is None:
        return torch.zeros_like(x)
    return torch.nan_to_num(g, nan=0.0, posinf=0.0, neginf=0.0).clamp(-clip, clip).detach()
'''


def emit_pyro(ir: ModelIR) -> str:
    """The Pyro model and guide of ``ir`` as the source of a Python module.

    :param ir: a checked model.
    :raises DtgRuntimeError: for a family the emitter does not write (discrete ones).
    :returns: the module's source (``docs/pyro.md`` describes its names and sites).
    """
    emitter = TorchEmitter(ir)
    definitions = _kernels(ir, emitter)
    if ir.reward is not None:
        env: Env = {"x0": ("x0", len(ir.message.space.shape))}
        definitions.append(
            f'def log_reward(x0):\n    """log r(x[0]): {ir.reward.text}"""\n'
            "    batch = x0.shape[0]\n"
            f"    return _full({emitter.emit(ir.reward.body, env)[0]}, batch, ())\n"
        )
    if emitter.grads:  # ∇ log r by autograd, as the in-memory lowering (dtg.ir.expr.RewardGrad)
        definitions.append(_REWARD_GRAD)
    nets = "".join(
        f'    "{name}": build_net(\n        {spec.arch!r},\n        {dict(spec.options)!r},\n'
        f"        ({''.join(space_code(s) + ', ' for s in spec.inputs).rstrip()}),\n"
        f"        {space_code(spec.output)},\n    ),\n"
        for name, spec in ir.nets.items()
    )
    kernels = {
        "model": (ir.start, ir.generate, *ir.generate_levels),
        "guide": (ir.destroy, *ir.destroy_levels),
    }
    register = {
        role: "".join(
            f'    pyro.module(PREFIX + ".{n}", nets["{n}"])\n'
            for n in dict.fromkeys(n for channel in channels for n in channel.nets)
        )
        for role, channels in kernels.items()
    }
    levels = [ir.steps, ir.steps - 1, "…", 0] if ir.steps > 2 else range(ir.steps, -1, -1)
    source = _MODULE.substitute(
        name=ir.name, steps=ir.steps, nets=nets,
        sites=", ".join(str(t) if t == "…" else f'"x_{t}"' for t in levels),
        imports="from dtg.targets import TARGETS\n" if emitter.targets else "",
        data_shape=repr(tuple(ir.message.space.shape)),
        level_shape=_level_shapes(ir),
        definitions="".join(f"\n\n{code}" for code in [*emitter.used.values(), *definitions]),
        register_model=register["model"], register_guide=register["guide"],
        factor="" if ir.reward is None else '        pyro.factor("log_reward", log_reward(x))\n',
    )  # fmt: skip
    return (
        source
        if "math." in source.split("import uuid")[1]
        else source.replace("import math\n", "", 1)
    )

"""``emit_pyro(ir) -> str``: a checked model as readable, self-contained Pyro source.

The emitted module imports ``math``, ``uuid``, ``torch``, ``pyro`` and :func:`dtg.nets.build_net`
(and :data:`dtg.targets.TARGETS` when a reward names a built-in target). It defines ``nets``,
``load_weights(state_dict)``, the kernels ``destroy``/``generate``/``start`` and Pyro's
``model(data=None, n=None)`` / ``guide(data=None, n=None)`` with the sites of
:mod:`dtg.backends.pyro`. Linear-Gaussian tables are inlined as lists, ``Guess`` is written out
from the posterior tables, general ``Normal`` kernels and schedules are translated from the typed IR
to torch (:class:`TorchEmitter`). Gaussian families and real starts only; others raise.
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


def _normal_kernel(role: str, channel: Any, emitter: TorchEmitter) -> str:
    message = emitter.ir.message
    src, rank = (
        ("x_prev", len(message.space.shape))
        if role == "destroy"
        else ("x_next", len(message.level_space.shape))
    )
    args = channel.args
    env = {"t": ("t", CONST), src: (src, rank)}
    text = _NORMAL.substitute(
        role=role, src=src, body=channel.text,
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
            f'    """q(x[t] | x[t-1]) = N(A[t] x[t-1], S[t]²): {destroy.text}"""\n'
            "    return _normal(A[level] * x_prev, S[level], len(LEVEL_SHAPE))\n"
        )
    elif destroy.family is Family.NORMAL:
        parts.append(_normal_kernel("destroy", destroy, emitter))
    else:
        raise unsupported(ir, f"a {destroy.family.label} destruction")
    if generate.family is Family.GUESS and destroy.family is Family.LINEAR_GAUSSIAN:
        m, options = ir.marginals, generate.options
        diagonal = m["mean"].ndim > 1  # per-coordinate tables: tensors, elementwise
        sigma = np.sqrt(np.maximum(np.nan_to_num(m["var"]), 0.0))
        tables = {"MEAN": m["mean"], "SIGMA": sigma, "BETA": m["beta"]}
        tables.update({k.upper(): m[k] for k in ("post_x0", "post_xt", "post_var")})
        parts += [table(name, values) for name, values in tables.items()]
        timed = any(s.kind == "time" for s in ir.nets[options["net"]].inputs)
        clip = options.get("clip")
        x0 = _X0[options["predict"]]
        x0 = x0 if clip is None else f"({x0}).clamp(-{clip}, {clip})"
        parts.append(_GUESS.substitute(
            body=generate.text, net=options["net"],
            time=", torch.full((x_next.shape[0],), level / T)" if timed else "",
            x0=x0, var="BETA[level]" if options["variance"] == "beta" else "POST_VAR[level]",
            variance=_VARIANCE[diagonal], std="var.sqrt()" if diagonal else "math.sqrt(var)",
        ))  # fmt: skip
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
    return parts + [
        f'def start(batch):\n    """p(x[T]): {start.text}"""\n'
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

from dtg.ir.space import Space
from dtg.nets import build_net
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
    emitter = TorchEmitter(ir)
    definitions = _kernels(ir, emitter)
    if ir.reward is not None:
        env: Env = {"x0": ("x0", len(ir.message.space.shape))}
        definitions.append(
            f'def log_reward(x0):\n    """log r(x[0]): {ir.reward.text}"""\n'
            "    batch = x0.shape[0]\n"
            f"    return _full({emitter.emit(ir.reward.body, env)[0]}, batch, ())\n"
        )
    nets = "".join(
        f'    "{name}": build_net(\n        {spec.arch!r},\n        {dict(spec.options)!r},\n'
        f"        ({''.join(space_code(s) + ', ' for s in spec.inputs).rstrip()}),\n"
        f"        {space_code(spec.output)},\n    ),\n"
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

"""The in-memory Pyro lowering of a compiled model: ``lower(model) -> (model_fn, guide_fn)``.

Sites (see ``docs/pyro.md``), all inside one ``pyro.plate("batch", B)``; values are
``[B, *shape]`` with ``event_dim = len(shape)`` (``x_0`` has the data's shape, ``x_1 … x_T`` the
level space's); only the loop over levels is Python:

* ``model_fn(data=None, n=None)`` (generation, p): ``"x_T"`` from the start, then ``"x_{t-1}"``
  for t = T … 1 (``"x_100"``, ``"x_99"``, …, ``"x_0"`` when T = 100); ``"x_0"`` is observed when
  ``data`` is given; a ``pyro.factor("log_reward", log r(x_0))`` when the model has a reward.
  Returns x[0].
* ``guide_fn(data, n=None)`` (destruction, q): ``"x_1"`` … ``"x_T"`` given ``x_0 = data``.

Gaussian channels become ``Normal(mean, std).to_event(k)`` (reparameterised, analytic KL), a
level with std 0 (a singleton) a ``Delta``, every other channel a :class:`ChannelDistribution`
(sample and log-prob of the channel protocol). Extra leading batch dims (particles, outer plates)
are flattened before a channel is called. The callables share the model's nets (no copies).
"""

from __future__ import annotations

import itertools
import math
import weakref
from collections.abc import Callable
from typing import Any

import pyro
import pyro.distributions as dist
import torch
from pyro.distributions import constraints
from pyro.distributions.torch_distribution import TorchDistribution
from torch import Tensor

from ..channels.base import level_tensor
from ..channels.gaussian import LinearGaussian, NormalKernel, NormalStart, PointStart
from ..channels.guess import GaussianGuess

__all__ = ["ChannelDistribution", "PyroModel", "PyroGuide", "lower", "site_name"]

_PREFIXES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_COUNTER = itertools.count(1)

Gaussian = Callable[[Tensor | None, Tensor, int], tuple[Tensor, Tensor | float]]


def site_name(level: int) -> str:
    """The Pyro site of level ``t``: ``"x_{t}"``."""
    return f"x_{level}"


class ChannelDistribution(TorchDistribution):
    """One channel at one level as a Pyro distribution over its target level.

    :param channel: an executable channel (``sample(source, t)``, ``log_prob(value, source, t)``).
    :param source: the level read, ``[*batch_shape, *source_shape]``, or ``None`` (the start).
    :param level: ``t``; :param batch_shape: leading dims; :param event_shape: the message's shape.
    :param discrete: token values (long); :param device: where a start samples.
    :param loc: with ``scale``, a reparameterised ``loc + scale·ε`` sampler (Gaussian channels
        whose std is 0 on some elements only), both ``[*batch_shape, *event_shape]``.
    """

    arg_constraints: dict = {}

    def __init__(
        self,
        channel: Any,
        source: Tensor | None,
        level: int,
        batch_shape: torch.Size,
        event_shape: torch.Size,
        discrete: bool = False,
        device: torch.device | None = None,
        loc: Tensor | None = None,
        scale: Tensor | None = None,
    ) -> None:
        self.channel, self.source, self.level, self.discrete = channel, source, level, discrete
        self.device = device if source is None else source.device
        self.loc, self.scale = loc, scale
        super().__init__(torch.Size(batch_shape), torch.Size(event_shape), validate_args=False)

    @property
    def has_rsample(self) -> bool:
        return self.loc is not None

    @property
    def support(self) -> constraints.Constraint:
        base = constraints.nonnegative_integer if self.discrete else constraints.real
        return constraints.independent(base, len(self.event_shape))

    def expand(self, batch_shape, _instance=None) -> ChannelDistribution:
        batch_shape = torch.Size(batch_shape)
        inner = len(self.batch_shape)

        def grow(value: Tensor | None) -> Tensor | None:
            return None if value is None else value.expand(batch_shape + value.shape[inner:])

        return ChannelDistribution(
            self.channel, grow(self.source), self.level, batch_shape, self.event_shape,
            self.discrete, self.device, grow(self.loc), grow(self.scale),
        )  # fmt: skip

    def _flat_source(self, batch: torch.Size) -> tuple[Tensor | None, Tensor]:
        n = batch.numel()
        source = self.source
        if source is not None:
            source = source.expand(batch + source.shape[len(self.batch_shape) :])
            source = source.reshape(n, *source.shape[len(batch) :])
        return source, level_tensor(self.level, n, self.device)

    def rsample(self, sample_shape=()) -> Tensor:
        """:returns: ``[*sample_shape, *batch_shape, *event_shape]``."""
        if len(sample_shape):
            return self.expand(torch.Size(sample_shape) + self.batch_shape).rsample()
        if self.loc is not None:
            return self.loc + self.scale * torch.randn_like(self.loc)
        source, t = self._flat_source(self.batch_shape)
        value = self.channel.sample(source, t)
        return value.reshape(self.batch_shape + value.shape[1:])

    def sample(self, sample_shape=()) -> Tensor:
        with torch.no_grad():
            return self.rsample(sample_shape)

    def log_prob(self, value: Tensor) -> Tensor:
        """``log k(value | source)`` from the channel: ``[*batch]`` (broadcast with ``value``)."""
        events = len(self.event_shape)
        batch = torch.broadcast_shapes(value.shape[: value.dim() - events], self.batch_shape)
        source, t = self._flat_source(batch)
        flat = value.expand(batch + value.shape[value.dim() - events :])
        flat = flat.reshape(batch.numel(), *flat.shape[len(batch) :])
        return self.channel.log_prob(flat, source, t).reshape(batch)


def _gaussian(channel: Any) -> Gaussian | None:
    """``(flat source, t [n], level) -> (mean [n, *shape], std)`` for Gaussian channels."""
    if isinstance(channel, LinearGaussian):
        if channel.diagonal:  # per coordinate: the level's [*shape] rows as tensors
            return lambda x, t, level: (channel.a[level] * x, channel.s[level])
        a, s = channel.a.tolist(), channel.s.tolist()
        return lambda x, t, level: (a[level] * x, s[level])
    if isinstance(channel, GaussianGuess):
        return _diagonal_guess(channel) if channel.destroy.diagonal else _guess(channel)
    if isinstance(channel, NormalKernel):
        return lambda x, t, level: channel.params(x, t)
    if isinstance(channel, NormalStart | PointStart):
        value = channel.mean_value if isinstance(channel, NormalStart) else channel.value
        std = channel.std_value if isinstance(channel, NormalStart) else 0.0
        shape = channel.shape
        return lambda x, t, level: (torch.full((t.shape[0], *shape), value, device=t.device), std)
    return None


def _guess(channel: GaussianGuess) -> Gaussian:
    """:meth:`GaussianGuess.mean_std` (the kernel its ``log_prob`` reports: β_1 at t = 1) with
    the level's table entries as Python numbers: every example of a site is at the same level."""
    tables = channel.destroy
    mean, sigma, post_x0, post_xt, post_var, beta = (
        getattr(tables, k).tolist() for k in ("mean", "sigma", "post_x0", "post_xt", "post_var", "beta")
    )  # fmt: skip

    def guess(x: Tensor, t: Tensor, level: int) -> tuple[Tensor, float]:
        out, m, s = channel.net(x, t), mean[level], sigma[level]
        if channel.predict == "epsilon":
            x0 = (x - s * out) / m
        else:
            x0 = out if channel.predict == "sample" else (m * x - s * out) / (m * m + s * s)
        if channel.clip is not None:
            x0 = x0.clamp(-channel.clip, channel.clip)
        var = beta[level] if channel.variance == "beta" else post_var[level]
        std = math.sqrt(var if var > 0 else beta[level])
        return post_x0[level] * x0 + post_xt[level] * x, std

    return guess


def _diagonal_guess(channel: GaussianGuess) -> Gaussian:
    """:func:`_guess` for a per-coordinate destruction: the level's table rows are ``[*shape]``
    tensors, so the same arithmetic runs elementwise."""

    def guess(x: Tensor, t: Tensor, level: int) -> tuple[Tensor, Tensor]:
        mean, var = channel.params(x, t)
        return mean, var.sqrt()

    return guess


class _Lowered:
    """What the model and the guide share: the compiled model, shapes, kernels, registration."""

    def __init__(self, model: Any, prefix: str | None) -> None:
        ir = model.ir
        self.compiled, self.steps, self.prefix = model, ir.steps, prefix
        spaces = [ir.message.space_at(level) for level in range(ir.steps + 1)]
        self.shapes = [torch.Size(space.shape) for space in spaces]
        self.tokens = [space.kind == "token" for space in spaces]
        self._gaussian: dict[int, Gaussian | None] = {}  # by channel module, built on first use

    def gaussian(self, channel: Any) -> Gaussian | None:
        """The Gaussian form of an executable channel (``None`` if it has none), cached."""
        key = id(channel)
        if key not in self._gaussian:
            self._gaussian[key] = _gaussian(channel)
        return self._gaussian[key]

    def register(self, names: tuple[str, ...]) -> None:
        """``pyro.module`` each named net under this lowering's unique prefix (no copies)."""
        if self.prefix is not None:
            for name in names:
                pyro.module(f"{self.prefix}.{name}", self.compiled.nets[name])

    def site(self, role: str, source: Tensor | None, level: int, batch=None, device=None):
        """The distribution of the level that channel ``role`` defines at level ``t = level``.

        :param role: ``destroy`` (x[t] from x[t-1]), ``generate`` (x[t-1] from x[t]) or ``start``.
        :param source: ``[*batch, *shape]``, or ``None`` for the start (then ``batch`` and
            ``device`` say where it samples).
        """
        channel = self.compiled.channel(role, level)
        read, out = _LEVELS[role](level)
        event = self.shapes[out]
        if source is not None:
            batch, device = source.shape[: source.dim() - len(self.shapes[read])], source.device
        batch = torch.Size(batch)
        gaussian = self.gaussian(channel)
        if gaussian is None:
            discrete = self.tokens[out]
            return ChannelDistribution(channel, source, level, batch, event, discrete, device)
        n, k = batch.numel(), len(event)
        flat = source if source is None or len(batch) == 1 else source.flatten(0, len(batch) - 1)
        mean, std = gaussian(flat, level_tensor(level, n, device), level)
        floating = flat is not None and flat.is_floating_point()
        dtype = flat.dtype if floating else torch.get_default_dtype()  # constants may be float64
        mean = _shaped(mean, dtype, n, event, batch)
        if not isinstance(std, Tensor):
            if std == 0:
                return dist.Delta(mean, event_dim=k)
            return dist.Normal(mean, std, validate_args=False).to_event(k)
        std = _shaped(std, dtype, n, event, batch)
        zero = std == 0
        if not bool(zero.any()):
            return dist.Normal(mean, std, validate_args=False).to_event(k)
        if bool(zero.all()):
            return dist.Delta(mean, event_dim=k)
        return ChannelDistribution(channel, source, level, batch, event, False, device, mean, std)


_LEVELS = {  # role -> (level read, level defined) at t
    "destroy": lambda t: (t - 1, t),
    "generate": lambda t: (t, t - 1),
    "start": lambda t: (t, t),
}


def _shaped(value: Tensor, dtype: torch.dtype, n: int, event: torch.Size, batch: torch.Size):
    """A flat ``[n, …]`` kernel parameter as ``[*batch, *event]`` of ``dtype``."""
    value = value if value.dtype == dtype else value.to(dtype)
    if value.shape != (n, *event):
        value = value.expand(n, *event)
    return value if len(batch) == 1 else value.reshape(batch + event)


class PyroModel(_Lowered):
    """The generation chain p as a Pyro model; call as ``model_fn(data=None, n=None)``."""

    def __call__(self, data: Tensor | None = None, n: int | None = None) -> Tensor:
        """:param data: ``[B, *shape]`` observed as ``x_0``; :param n: ``B`` when sampling.
        :returns: x[0], ``[B, *shape]``."""
        ir, steps = self.compiled.ir, self.steps
        kernels = (ir.start, ir.generate, *ir.generate_levels)
        self.register(tuple(dict.fromkeys(net for channel in kernels for net in channel.nets)))
        if data is None and n is None:
            raise ValueError("give data ([B, *shape]) or the number of samples n")
        batch, device = (n, self.compiled.device) if data is None else (data.shape[0], data.device)
        with pyro.plate("batch", int(batch), device=device) as index:
            start = self.site("start", None, steps, index.shape, device)
            x = pyro.sample(site_name(steps), start)
            for level in range(steps, 0, -1):
                obs = data if level == 1 else None
                x = pyro.sample(site_name(level - 1), self.site("generate", x, level), obs=obs)
            reward = getattr(self.compiled, "reward_fn", None)
            if ir.reward is not None and reward is not None:
                dims = x.shape[: x.dim() - len(self.shapes[0])]
                log_r = reward(x.reshape(dims.numel(), *self.shapes[0])).reshape(dims)
                dtype = x.dtype if x.is_floating_point() else torch.get_default_dtype()
                pyro.factor("log_reward", log_r.to(dtype))
        return x


class PyroGuide(_Lowered):
    """The destruction chain q as a Pyro guide; call as ``guide_fn(data, n=None)``."""

    def __call__(self, data: Tensor | None = None, n: int | None = None) -> Tensor:
        """:param data: x[0], ``[B, *shape]`` (required). :returns: x[T], ``[B, *level shape]``."""
        if data is None:
            raise ValueError("the guide runs the destruction chain from data x[0]: give data")
        ir = self.compiled.ir
        kernels = (ir.destroy, *ir.destroy_levels)
        self.register(tuple(dict.fromkeys(net for channel in kernels for net in channel.nets)))
        with pyro.plate("batch", int(data.shape[0])):
            x = data
            for level in range(1, self.steps + 1):
                x = pyro.sample(site_name(level), self.site("destroy", x, level))
        return x


def lower(model: Any, register: bool = True) -> tuple[PyroModel, PyroGuide]:
    """Lower a compiled model to ``(model_fn, guide_fn)`` sharing its nets.

    :param model: a :class:`~dtg.backends.torch.CompiledModel`.
    :param register: ``pyro.module`` the nets (for ``SVI`` with a ``pyro.optim`` optimiser) under
        a prefix unique to this compiled model (``"<name>_<k>.<net>"``), so two models never share
        param-store entries. ``False`` (the ``elbo`` objective) leaves the param store untouched.
    :returns: the model and the guide callables.
    """
    prefix = None
    if register:
        prefix = _PREFIXES.get(model)
        if prefix is None:
            prefix = _PREFIXES[model] = f"{model.ir.name}_{next(_COUNTER)}"
    return PyroModel(model, prefix), PyroGuide(model, prefix)

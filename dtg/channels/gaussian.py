"""Gaussian channels: linear-Gaussian destruction, general Normal kernels, the Normal start.

* :class:`LinearGaussian`: ``x[t] ~ N(a_t x[t-1], s_t²)`` with fixed tables (the thesis's
  *GaussianShuffle*); closed-form marginal ``N(m_t x[0], v_t)`` and posterior (Ho et al. 2020).
* :class:`NormalKernel`: any ``Normal(mean, std)`` whose mean and std are expressions (nets
  included), evaluated by closures; a zero std at a level is a deterministic step (log-prob 0).
* :class:`NormalStart`: ``x[T] ~ N(μ, σ²)`` with constants; :class:`PointStart`: ``x[T] = c``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from .base import Channel, sum_event

__all__ = [
    "LinearGaussian",
    "NormalKernel",
    "NormalStart",
    "PointStart",
    "normal_log_prob",
    "gaussian_log_prob",
]

LOG_2PI = math.log(2 * math.pi)


def normal_log_prob(value: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """Elementwise log N(value; mean, std²) (no reduction)."""
    return -0.5 * ((value - mean) / std) ** 2 - torch.log(std) - 0.5 * LOG_2PI


def gaussian_log_prob(value: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """log N(value; mean, std²) summed over the message ``[B]``; zero-std entries count 0."""
    point = std == 0
    safe = torch.where(point, torch.ones_like(std), std)
    out = normal_log_prob(value, mean, safe)
    return sum_event(torch.where(point, torch.zeros_like(out), out))


def _buffer(values: np.ndarray) -> Tensor:
    return torch.as_tensor(np.nan_to_num(values, nan=0.0), dtype=torch.float32)


def _view(values: Tensor, like: Tensor) -> Tensor:
    """Level parameters viewed to broadcast against ``[B, *shape]``: ``[B]`` (one value per
    example) or already ``[B, *shape]`` (a per-coordinate table)."""
    return values.reshape(values.shape + (1,) * (like.dim() - values.dim()))


class LinearGaussian(Channel):
    """``x[t] = a_t x[t-1] + s_t ε``; tables indexed by ``t = 0..T`` (float32 buffers).

    Tables are ``[T + 1]`` (one a_t, s_t for every coordinate) or ``[T + 1, *shape]`` (a
    per-coordinate, diagonal kernel: each coordinate its own chain); ``table[t]`` is then ``[B]``
    or ``[B, *shape]``, and every formula below holds elementwise.

    :param tables: ``a``, ``s`` (per level) and the marginal/posterior tables of
        :func:`dtg.marginals.gaussian_tables`.
    """

    def __init__(self, tables: dict[str, np.ndarray]) -> None:
        super().__init__()
        for name in ("a", "s", "mean", "var", "post_x0", "post_xt", "post_var", "beta"):
            self.register_buffer(name, _buffer(tables[name]))
        self.register_buffer("sigma", _buffer(np.sqrt(np.maximum(tables["var"], 0.0))))

    def sample(self, source: Tensor | None, t: Tensor, generator=None) -> Tensor:
        assert source is not None
        noise = torch.randn(
            source.shape, generator=generator, device=source.device, dtype=source.dtype
        )
        return _view(self.a[t], source) * source + _view(self.s[t], source) * noise

    def log_prob(self, value: Tensor, source: Tensor | None, t: Tensor) -> Tensor:
        assert source is not None
        std = _view(self.s[t], value)
        mean = _view(self.a[t], value) * source
        point = std == 0  # a deterministic step into the singleton contributes 0
        safe = torch.where(point, torch.ones_like(std), std)
        out = normal_log_prob(value, mean, safe)
        return sum_event(torch.where(point.expand_as(out), torch.zeros_like(out), out))

    def marginal(self, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """``x[t] = m_t x[0] + √v_t ε``: a draw from q(x[t] | x[0]) with the given noise."""
        return _view(self.mean[t], x0) * x0 + _view(self.sigma[t], x0) * noise

    @property
    def diagonal(self) -> bool:
        """Whether the tables are per coordinate (``[T + 1, *shape]``)."""
        return self.a.dim() > 1

    def posterior(self, xt: Tensor, x0: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        """Mean ``[B, *shape]`` and variance ``[B, 1…]`` (``[B, *shape]`` when diagonal) of
        q(x[t-1] | x[t], x[0])."""
        mean = _view(self.post_x0[t], x0) * x0 + _view(self.post_xt[t], xt) * xt
        return mean, _view(self.post_var[t], xt)

    def predict_x0(self, xt: Tensor, prediction: Tensor, t: Tensor, predict: str) -> Tensor:
        """x̂[0] from a net's output under ``predict = epsilon | sample | v_prediction``.

        With x[t] = m x[0] + σ ε and v = m ε − σ x[0]: x[0] = (x[t] − σ ε)/m, or
        x[0] = (m x[t] − σ v)/(m² + σ²) (diffusers' ``prediction_type`` for m² + σ² = 1).
        """
        m, sigma = _view(self.mean[t], xt), _view(self.sigma[t], xt)
        if predict == "epsilon":
            return (xt - sigma * prediction) / m
        if predict == "sample":
            return prediction
        return (m * xt - sigma * prediction) / (m**2 + sigma**2)

    def target(self, x0: Tensor, noise: Tensor, t: Tensor, predict: str) -> Tensor:
        """What the net should output for ``predict``: ε, x[0] or v = m ε − σ x[0]."""
        if predict == "epsilon":
            return noise
        if predict == "sample":
            return x0
        m, sigma = _view(self.mean[t], x0), _view(self.sigma[t], x0)
        return m * noise - sigma * x0

    def snr(self, t: Tensor) -> Tensor:
        """Signal-to-noise ratio m_t² / v_t at levels ``t``: ``[B]`` (``[B, *shape]`` when
        diagonal)."""
        return self.mean[t] ** 2 / self.var[t].clamp_min(1e-20)


class NormalKernel(Channel):
    """``Normal(mean(·), std(·))`` with mean and std computed by closures of the source level.

    :param mean: closure ``(source [B, …], t [B]) -> [B, *shape]``.
    :param std: closure of the same form (a scalar result broadcasts).
    """

    def __init__(
        self,
        mean: Callable[[Tensor | None, Tensor], Tensor],
        std: Callable[[Tensor | None, Tensor], Tensor],
        shape: tuple[int, ...],
    ) -> None:
        super().__init__()
        self.mean_fn, self.std_fn, self.shape = mean, std, shape

    def params(self, source: Tensor | None, t: Tensor) -> tuple[Tensor, Tensor]:
        batch = t.shape[0]
        mean = self.mean_fn(source, t)
        std = self.std_fn(source, t)
        # Constants are float64 0-dim tensors; keep the chain in the nets' dtype.
        dtype = mean.dtype if mean.dim() > 0 else std.dtype if std.dim() > 0 else None
        if dtype is None and source is not None and source.is_floating_point():
            dtype = source.dtype
        if dtype is not None:
            mean, std = mean.to(dtype), std.to(dtype)
        full = (batch, *self.shape)
        if mean.dim() <= 1:
            mean = mean.reshape(mean.shape + (1,) * (len(full) - mean.dim())).expand(full)
        if std.dim() <= 1:
            std = std.reshape(std.shape + (1,) * (len(full) - std.dim())).expand(full)
        return mean, std

    def mean_std(self, source: Tensor | None, t: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and std ``[B, *shape]`` of the kernel at ``source``."""
        return self.params(source, t)

    def sample(
        self, source: Tensor | None, t: Tensor, generator=None, extra_std: float = 0.0
    ) -> Tensor:
        mean, std = self.params(source, t)
        if extra_std:
            std = torch.sqrt(std**2 + extra_std**2)
        noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        return mean + std * noise

    def log_prob(self, value: Tensor, source: Tensor | None, t: Tensor) -> Tensor:
        mean, std = self.params(source, t)
        point = std == 0
        safe = torch.where(point, torch.ones_like(std), std)
        out = normal_log_prob(value, mean, safe)
        return sum_event(torch.where(point, torch.zeros_like(out), out))


class NormalStart(Channel):
    """``x[T] ~ N(μ, σ²)`` elementwise with constant μ, σ over a message of ``shape``."""

    def __init__(self, mean: float, std: float, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.mean_value, self.std_value, self.shape = float(mean), float(std), shape
        self.register_buffer("probe", torch.zeros(()))  # follows .to(device/dtype)

    def sample(self, source: Tensor | None, t: Tensor, generator=None) -> Tensor:
        noise = torch.randn(
            (t.shape[0], *self.shape), generator=generator, device=t.device, dtype=self.probe.dtype
        )
        return self.mean_value + self.std_value * noise

    def log_prob(self, value: Tensor, source: Tensor | None, t: Tensor) -> Tensor:
        std = torch.full_like(value, self.std_value)
        return sum_event(normal_log_prob(value, torch.full_like(value, self.mean_value), std))

    def kl_from(self, mean: Tensor, var: Tensor) -> Tensor:
        """KL(N(mean, var) ‖ this start), summed over the message: ``[B]``."""
        var = var.expand_as(mean)
        s2 = self.std_value**2
        kl = 0.5 * (torch.log(s2 / var) + (var + (mean - self.mean_value) ** 2) / s2 - 1.0)
        return sum_event(kl)


class PointStart(Channel):
    """``x[T] = c``: the singleton ``*`` (log-probability 0)."""

    stochastic = False

    def __init__(self, value: float, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.value, self.shape = float(value), shape
        self.register_buffer("probe", torch.zeros(()))  # follows .to(device/dtype)

    def sample(self, source: Tensor | None, t: Tensor, generator=None) -> Tensor:
        return torch.full(
            (t.shape[0], *self.shape), self.value, device=t.device, dtype=self.probe.dtype
        )

    def log_prob(self, value: Tensor, source: Tensor | None, t: Tensor) -> Tensor:
        return torch.zeros(value.shape[0], device=value.device)

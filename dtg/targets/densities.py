"""The torch densities and exact samplers behind :data:`dtg.targets.TARGETS` (Sendera et al.
2024, arXiv 2402.05098).

For each target, :data:`DENSITIES` holds

- ``log_reward(x)``: ``Tensor[..., dim] -> Tensor[...]``, the log of the (possibly
  unnormalised) density, vectorised over any leading batch dimensions; the result has the
  device and dtype of ``x``;
- ``sample(n, generator)``: ``-> Tensor[n, dim]``, exact samples (float32 unless ``dtype=`` is
  given; on the generator's device unless ``device=`` is given);
- ``log_z``: the log normalising constant, ``log ∫ exp(log_reward(x)) dx``.

``gmm25`` (2-D)
    Equal mixture of 25 Gaussians with means on ``{-10, -5, 0, 5, 10}^2`` and variance 0.3 in
    each coordinate. Normalised: ``log_z = 0``.
``funnel`` (10-D)
    Neal's funnel: ``x0 ~ N(0, 9)`` (std 3), ``x1..x9 | x0 ~ N(0, exp(x0))`` (variance
    ``exp(x0)``). Normalised: ``log_z = 0``.
``manywell`` (32-D)
    16 independent copies of the 2-D density ``exp(-a^4 + 6 a^2 + 0.5 a - 0.5 b^2)`` on the
    coordinate pairs ``(x[2i], x[2i+1])``. Unnormalised: ``log_z = 16 log Z2`` with
    ``Z2 = sqrt(2 pi) * ∫ exp(-a^4 + 6 a^2 + 0.5 a) da`` (numerical quadrature),
    ``log_z ≈ 164.6957``.

The names and dimensions live in the torch-free :mod:`dtg.targets.registry`, which imports this
module on a target's first evaluation.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

from .normalisers import (
    GMM25_GRID,
    GMM25_VAR,
    MANYWELL_WELLS,
    manywell_log_f,
    manywell_log_z,
    manywell_tables,
)

__all__ = [
    "DENSITIES",
    "Density",
    "MANYWELL_LOG_Z",
    "funnel_log_reward",
    "gmm25_log_reward",
    "manywell_log_reward",
]

_LOG_2PI = math.log(2.0 * math.pi)


class Density(NamedTuple):
    """The torch side of one target.

    :param log_reward: ``Tensor[..., d] -> Tensor[...]``, same device and dtype as the input.
    :param sample: ``(n, generator, *, device=None, dtype=float32) -> Tensor[n, d]``.
    :param log_z: ``log ∫ exp(log_reward(x)) dx``.
    """

    log_reward: Callable[[Tensor], Tensor]
    sample: Callable[..., Tensor]
    log_z: float


def _check_dim(x: Tensor, dim: int, name: str) -> None:
    if x.ndim < 1 or x.shape[-1] != dim:
        raise ValueError(f"{name} expects points of shape [..., {dim}], got {tuple(x.shape)}")


def _devices(
    generator: torch.Generator | None, device: torch.device | str | None
) -> tuple[torch.device, torch.device]:
    """:returns: where samples go (``device``, else the generator's, else the CPU) and where
    they are drawn (the generator's device: a generator draws only on its own)."""
    drawn = generator.device if generator is not None else None
    out = torch.device(device) if device is not None else drawn or torch.device("cpu")
    return out, drawn or out


# --------------------------------------------------------------------------------------------
# gmm25

_GMM_VAR = GMM25_VAR
_GMM_GRID = GMM25_GRID


@functools.lru_cache(maxsize=16)
def _gmm25_means(device: torch.device, dtype: torch.dtype) -> Tensor:
    """:returns: ``Tensor[25, 2]`` of component means (made once per device and dtype: a tensor
    built from a Python list each call is a host-to-device copy per step, and cannot be captured
    in a CUDA graph). Read-only."""
    g = torch.tensor(_GMM_GRID, device=device, dtype=dtype)
    return torch.cartesian_prod(g, g)


def gmm25_log_reward(x: Tensor) -> Tensor:
    """Normalised log-density of the 25-component Gaussian mixture.

    :param x: ``Tensor[..., 2]``.
    :returns: ``Tensor[...]``.
    """
    _check_dim(x, 2, "gmm25")
    means = _gmm25_means(x.device, x.dtype)
    sq = ((x.unsqueeze(-2) - means) ** 2).sum(-1)  # [..., 25]
    log_comp = -0.5 * sq / _GMM_VAR - (_LOG_2PI + math.log(_GMM_VAR))  # 2 dims of -0.5 log(2πσ²)
    return torch.logsumexp(log_comp, dim=-1) - math.log(25.0)


def _gmm25_sample(
    n: int,
    generator: torch.Generator | None = None,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """:returns: ``Tensor[n, 2]`` exact samples of ``gmm25``."""
    dev, gdev = _devices(generator, device)
    k = torch.randint(25, (n,), generator=generator, device=gdev)
    z = torch.randn(n, 2, generator=generator, device=gdev, dtype=dtype)
    means = _gmm25_means(gdev, dtype)
    return (means[k] + math.sqrt(_GMM_VAR) * z).to(dev)


# --------------------------------------------------------------------------------------------
# funnel

_FUNNEL_DIM = 10
_FUNNEL_STD0 = 3.0


def funnel_log_reward(x: Tensor) -> Tensor:
    """Normalised log-density of Neal's 10-D funnel.

    ``log p = log N(x0; 0, 9) + sum_{i=1..9} log N(xi; 0, exp(x0))``.

    :param x: ``Tensor[..., 10]``.
    :returns: ``Tensor[...]``.
    """
    _check_dim(x, _FUNNEL_DIM, "funnel")
    x0 = x[..., 0]
    rest = x[..., 1:]
    lp0 = -0.5 * (x0 / _FUNNEL_STD0) ** 2 - math.log(_FUNNEL_STD0) - 0.5 * _LOG_2PI
    k = _FUNNEL_DIM - 1
    # sum_i -xi^2 / (2 e^{x0}) - x0/2 - log(2π)/2, computed as exp(-x0) * sum to stay finite
    lpr = -0.5 * (rest**2).sum(-1) * torch.exp(-x0) - 0.5 * k * x0 - 0.5 * k * _LOG_2PI
    return lp0 + lpr


def _funnel_sample(
    n: int,
    generator: torch.Generator | None = None,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """:returns: ``Tensor[n, 10]`` exact samples of ``funnel``."""
    dev, gdev = _devices(generator, device)
    z = torch.randn(n, _FUNNEL_DIM, generator=generator, device=gdev, dtype=dtype)
    x0 = _FUNNEL_STD0 * z[:, :1]
    return torch.cat([x0, torch.exp(0.5 * x0) * z[:, 1:]], dim=1).to(dev)


# --------------------------------------------------------------------------------------------
# manywell

_MW_WELLS = MANYWELL_WELLS
_MW_DIM = 2 * _MW_WELLS
_mw_log_f = manywell_log_f
_MW_LOG_Z1, _MW_GRID, _MW_CDF = manywell_tables()
#: log Z of the 32-D many-well target, 16 * (log Z1 + log sqrt(2π)) ≈ 164.6957.
MANYWELL_LOG_Z: float = manywell_log_z()


def manywell_log_reward(x: Tensor) -> Tensor:
    """Unnormalised log-density of the 32-D many-well target.

    :param x: ``Tensor[..., 32]``; wells are the pairs ``(x[2i], x[2i+1])``.
    :returns: ``Tensor[...]``.
    """
    _check_dim(x, _MW_DIM, "manywell")
    pairs = x.reshape(*x.shape[:-1], _MW_WELLS, 2)
    a, b = pairs[..., 0], pairs[..., 1]
    return (_mw_log_f(a) - 0.5 * b**2).sum(-1)


def _manywell_sample(
    n: int,
    generator: torch.Generator | None = None,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """:returns: ``Tensor[n, 32]`` exact samples: the first coordinate of each well by inverse
    CDF (linear interpolation on a 240k-point grid), the second ``N(0, 1)``."""
    dev, gdev = _devices(generator, device)
    u = torch.rand(n, _MW_WELLS, generator=generator, device=gdev, dtype=torch.float64)
    cdf = torch.as_tensor(_MW_CDF, device=gdev)
    grid = torch.as_tensor(_MW_GRID, device=gdev)
    i = torch.searchsorted(cdf, u).clamp(1, cdf.numel() - 1)
    c0, c1 = cdf[i - 1], cdf[i]
    frac = ((u - c0) / (c1 - c0).clamp_min(1e-300)).clamp(0.0, 1.0)
    a = grid[i - 1] + frac * (grid[i] - grid[i - 1])
    b = torch.randn(n, _MW_WELLS, generator=generator, device=gdev, dtype=torch.float64)
    return torch.stack([a, b], dim=-1).reshape(n, _MW_DIM).to(device=dev, dtype=dtype)


# --------------------------------------------------------------------------------------------

DENSITIES: dict[str, Density] = {
    "gmm25": Density(gmm25_log_reward, _gmm25_sample, 0.0),
    "funnel": Density(funnel_log_reward, _funnel_sample, 0.0),
    "manywell": Density(manywell_log_reward, _manywell_sample, MANYWELL_LOG_Z),
}
"""Each target's density, sampler and log normalising constant, by name."""

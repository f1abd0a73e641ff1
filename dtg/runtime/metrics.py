"""Distances between sample sets, and bits per dimension (DESIGN.md §6).

:func:`mmd_rbf` (unbiased squared MMD, RBF kernel, median-heuristic bandwidth) and
:func:`sliced_wasserstein` compare a model's samples with held-out data (:mod:`dtg.runtime.evaluate`)
or a fine-tuned model's samples with its prior's (:mod:`dtg.runtime.finetune_eval`);
:func:`bits_per_dim` turns a negative ELBO in nats into bits per dimension.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["mmd_rbf", "sliced_wasserstein", "bits_per_dim"]

_MEDIAN_POINTS = 1000


def _flat(x: Tensor) -> Tensor:
    return x.detach().reshape(x.shape[0], -1).double()


def mmd_rbf(x: Tensor, y: Tensor, bandwidth: float | None = None) -> float:
    """Unbiased estimate of the squared MMD with an RBF kernel ``exp(-|a − b|² / (2 σ²))``.

    :param x: ``[n, *shape]`` samples (``n ≥ 2``).
    :param y: ``[m, *shape]`` samples (``m ≥ 2``), on the same device.
    :param bandwidth: ``σ``; default the median heuristic (the median pairwise distance of the
        pooled points, on at most 1000 evenly spaced ones).
    :returns: ``MMD²``: about 0 (possibly slightly negative) when ``x`` and ``y`` share a law.
    """
    a, b = _flat(x), _flat(y)
    n, m = a.shape[0], b.shape[0]
    if n < 2 or m < 2:
        raise ValueError("mmd_rbf needs at least two points on each side")
    if bandwidth is None:
        pooled = torch.cat([a, b])
        pick = torch.linspace(0, len(pooled) - 1, min(len(pooled), _MEDIAN_POINTS)).long()
        d2 = torch.cdist(pooled[pick], pooled[pick]).pow(2)
        off = d2[~torch.eye(len(pick), dtype=torch.bool, device=d2.device)]
        sigma2 = float(off.median()) if len(off) else 1.0
        sigma2 = sigma2 if sigma2 > 0 else 1.0
    else:
        sigma2 = float(bandwidth) ** 2

    def kernel(u: Tensor, v: Tensor) -> Tensor:
        return torch.exp(-torch.cdist(u, v).pow(2) / (2.0 * sigma2))

    kxx, kyy, kxy = kernel(a, a), kernel(b, b), kernel(a, b)
    xx = (kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1))
    yy = (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
    return float(xx + yy - 2.0 * kxy.mean())


def _wasserstein_1d(u: Tensor, v: Tensor, p: float) -> Tensor:
    """Exact ``W_p^p`` between the empirical laws of the columns of ``u`` ``[n, P]`` and ``v``
    ``[m, P]`` (uniform weights): the integral over ``q`` of ``|F⁻¹(q) − G⁻¹(q)|^p``.

    :returns: ``[P]``.
    """
    n, m = u.shape[0], v.shape[0]
    us, vs = u.sort(dim=0).values, v.sort(dim=0).values
    if n == m:
        return (us - vs).abs().pow(p).mean(dim=0)
    f64 = {"device": u.device, "dtype": torch.float64}
    edges = torch.cat([torch.arange(1, n + 1, **f64) / n, torch.arange(1, m + 1, **f64) / m])
    edges = edges.sort().values
    widths = torch.diff(edges, prepend=edges.new_zeros(1))
    mids = edges - widths / 2
    iu = (mids * n).floor().long().clamp(0, n - 1)
    iv = (mids * m).floor().long().clamp(0, m - 1)
    return ((us[iu] - vs[iv]).abs().pow(p) * widths[:, None]).sum(dim=0)


def sliced_wasserstein(
    x: Tensor,
    y: Tensor,
    projections: int = 256,
    generator: torch.Generator | None = None,
    p: float = 2.0,
) -> float:
    """Sliced ``p``-Wasserstein distance: ``(E_θ W_p^p(θ·x, θ·y))^(1/p)`` over random directions.

    :param x: ``[n, *shape]`` samples.
    :param y: ``[m, *shape]`` samples (sizes may differ; the 1-D distances are exact).
    :param projections: the number of random unit directions ``θ``.
    :param generator: a CPU generator for the directions (default: a fresh one seeded 0).
    :param p: the order (2 by default).
    :returns: the distance (for 1-D data it is exactly ``W_p``).
    """
    a, b = _flat(x), _flat(y)
    if generator is None:
        generator = torch.Generator().manual_seed(0)
    theta = torch.randn(a.shape[1], projections, generator=generator, dtype=torch.float64)
    theta = (theta / theta.norm(dim=0, keepdim=True)).to(a.device)
    return float(_wasserstein_1d(a @ theta, b @ theta, p).mean() ** (1.0 / p))


def bits_per_dim(nelbo_nats: float | Tensor, dims: int) -> float | Tensor:
    """Negative ELBO per example in nats → bits per dimension: ``nats / (dims · ln 2)``."""
    return nelbo_nats / (dims * math.log(2.0))

"""Evaluation metrics (DESIGN.md §6): held-out negative ELBO, bits/dim, MMD, sliced Wasserstein.

For a data model, :func:`evaluate` reports the negative ELBO of the held-out split in nats per
example and in bits per dimension, and for 2-D real data also the MMD and the sliced Wasserstein
distance between ``model.sample(n)`` and held-out points. For a sampler (no data) it reports the
sampler metrics of :mod:`dtg.runtime.sampler_eval` (log Ẑ, ESS, and Δlog Z/EUBO/W2 for built-in
targets).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from ..errors import DtgRuntimeError
from .checkpoint import seed_everything

__all__ = ["mmd_rbf", "sliced_wasserstein", "bits_per_dim", "evaluate"]

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


def evaluate(
    model: Any, n: int = 2000, seed: int = 0, batch: int = 500, max_examples: int | None = None
) -> dict[str, float]:
    """The §6 metrics of a (trained) compiled model.

    :param model: a compiled model; it is put in eval mode for the duration.
    :param n: samples drawn (data models: for MMD / sliced W; samplers: trajectories).
    :param seed: seeds sampling and the random projections.
    :param batch: the held-out split is scored ``batch`` examples at a time.
    :param max_examples: score only the first this many held-out examples (default: all).
    :returns: data models: ``nelbo_nats``, ``bits_per_dim``, ``test_examples`` and for 2-D real
        data ``mmd`` and ``sliced_w``; samplers: see :func:`~dtg.runtime.sampler_eval.evaluate_sampler`.
    """
    from .train import DATA_SPLIT_SEED

    was_training = model.training
    model.eval()
    try:
        seed_everything(seed)
        if not model.needs_data:
            from .sampler_eval import evaluate_sampler

            return evaluate_sampler(model, k=n, seed=seed)
        space = model.ir.message.space
        test = model.dataset(DATA_SPLIT_SEED).test[:max_examples].to(model.device)
        out: dict[str, float] = {"test_examples": float(len(test))}
        try:
            with torch.no_grad():
                nelbo = torch.cat(
                    [model.nelbo(test[i : i + batch]) for i in range(0, len(test), batch)]
                )
        except DtgRuntimeError:
            nelbo = None  # an objective without an ELBO (the caller sees the keys missing)
        if nelbo is not None:
            mean = float(nelbo.double().mean())
            out["nelbo_nats"] = mean
            out["bits_per_dim"] = bits_per_dim(mean, math.prod(space.shape))
        if getattr(model, "prior", None) is not None and model.reward_fn is not None:
            from .finetune_eval import evaluate_finetune

            out.update(evaluate_finetune(model, n=min(n, 1000), seed=seed))
        if space.kind == "real" and tuple(space.shape) == (2,):
            samples = model.sample(n)
            reference = test[:n]
            out["mmd"] = mmd_rbf(samples, reference)
            generator = torch.Generator().manual_seed(seed)
            out["sliced_w"] = sliced_wasserstein(samples, reference, generator=generator)
        return out
    finally:
        model.train(was_training)

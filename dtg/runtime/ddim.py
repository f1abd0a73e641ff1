"""Few-step sampling of a linear-Gaussian model: respaced DDIM with η (``dtg sample --levels``).

A model whose destruction is linear-Gaussian, x[t] = m_t x[0] + √v_t ε marginally, and whose
generation is a Gaussian ``Guess`` (a net's x̂[0]) can skip levels: from x[t] to an earlier
level s < t,

    x[s] = m_s x̂[0] + √(v_s − σ²) ε̂ + σ z,     ε̂ = (x[t] − m_t x̂[0]) / √v_t,
    σ² = η² · v_s (v_t − a² v_s) / v_t,          a = m_t / m_s,

where v_s (v_t − a² v_s) / v_t is the variance of the destruction's posterior q(x[s] | x[t],
x[0]). With η = 1 a step is exactly that posterior at x̂[0] (for s = t − 1 it is the model's own
ancestral step when its ``Guess`` has ``variance = posterior``, tested), with η = 0 it is
deterministic (DDIM); any η in [0, 1] keeps the marginals q(x[s] | x[0]) of the skipped chain. The levels visited are ``K`` evenly spaced ones from T down
to 0; the last step returns x̂[0].

References: Song, Meng, Ermon 2021, Denoising Diffusion Implicit Models (arXiv 2010.02502), eq. 12
and §4.2 (respacing); Nichol & Dhariwal 2021 (arXiv 2102.09672), §4 (respaced sampling).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..channels.base import level_tensor
from ..channels.gaussian import LinearGaussian, _view  # the tables' one broadcasting rule
from ..channels.guess import GaussianGuess
from ..errors import DtgRuntimeError

__all__ = ["ddim_levels", "ddim_step", "ddim_sample"]


def ddim_levels(steps: int, levels: int) -> list[int]:
    """``levels + 1`` distinct levels from ``steps`` down to 0, evenly spaced (rounded).

    :param steps: T. :param levels: K, 1 ≤ K ≤ T.
    :returns: ``[T, …, 0]``.
    :raises ValueError: unless ``1 ≤ levels ≤ steps``.
    """
    if not 1 <= levels <= steps:
        raise ValueError(f"levels must be in [1, {steps}], got {levels}")
    return [round(steps * (levels - k) / levels) for k in range(levels + 1)]


def ddim_step(guess: GaussianGuess, x: Tensor, t: int, s: int, eta: float) -> tuple[Tensor, Tensor]:
    """Mean and variance of the step from level ``t`` to ``s < t`` (see the module docstring).

    :param x: x[t], ``[B, *shape]``.
    :returns: ``(mean [B, *shape], variance broadcastable to it)``; at ``s = 0`` (x̂[0], 0).
    """
    destroy: LinearGaussian = guess.destroy
    level = level_tensor(t, x.shape[0], x.device)
    x0 = guess.x0(x, level)
    if s == 0:
        return x0, torch.zeros_like(x0)
    before = level_tensor(s, x.shape[0], x.device)
    m_t, v_t = _view(destroy.mean[level], x), _view(destroy.var[level], x)
    m_s, v_s = _view(destroy.mean[before], x), _view(destroy.var[before], x)
    noised = v_t > 0  # a coordinate a per-coordinate table never noises has ε̂ = 0
    eps = torch.where(noised, (x - m_t * x0) / v_t.clamp_min(1e-30).sqrt(), torch.zeros_like(x))
    a = m_t / torch.where(m_s != 0, m_s, torch.ones_like(m_s))
    variance = (eta**2) * v_s * (v_t - a**2 * v_s) / v_t.clamp_min(1e-30)
    variance = torch.where(noised, variance.clamp_min(0.0), torch.zeros_like(variance))
    return m_s * x0 + (v_s - variance).clamp_min(0.0).sqrt() * eps, variance


@torch.no_grad()
def ddim_sample(model: Any, n: int, levels: int, eta: float = 0.0) -> Tensor:
    """Sample with ``levels`` steps of :func:`ddim_step` from the model's start at level T.

    :param model: a compiled model with linear-Gaussian destruction and a Gaussian ``Guess``.
    :param levels: how many levels to visit (1 … T).
    :param eta: 0 deterministic (DDIM), 1 the posterior of the skipped chain.
    :returns: ``[n, *shape]``.
    :raises DtgRuntimeError: for another kind of model, or ``levels``/``eta`` out of range.
    """
    if not isinstance(getattr(model, "generate", None), GaussianGuess) or model.ir.generate_levels:
        raise DtgRuntimeError(
            f"few-step sampling needs linear-Gaussian destruction with a Gaussian Guess; model "
            f"'{model.ir.name}' has another generation chain",
            hints=["sample it with all its levels (drop --levels)"],
        )
    steps = model.ir.steps
    if not 1 <= levels <= steps:
        raise DtgRuntimeError(f"--levels must be in [1, {steps}] (T = {steps}), got {levels}")
    if not 0 <= eta <= 1:  # also refuses NaN; past 1 the marginals are no longer kept
        raise DtgRuntimeError(f"--eta must be in [0, 1], got {eta}")
    x = model.start.sample(None, level_tensor(steps, n, model.device))
    path = ddim_levels(steps, levels)
    for t, s in zip(path, path[1:], strict=False):
        mean, variance = ddim_step(model.generate, x, t, s, eta)
        x = mean + variance.sqrt() * torch.randn_like(mean)
    return x

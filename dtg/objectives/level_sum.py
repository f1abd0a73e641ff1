"""The sum over levels of a negative ELBO, exact or estimated from a few levels per example.

A diffusion model's NELBO is ``prior + Σₜ termₜ`` over its ``T`` levels. Summing every level costs
``T`` net passes per example; a held-out curve that is evaluated often (train option
``eval_levels``) can instead draw ``K`` distinct levels per example, uniformly without
replacement, and weight their sum by ``T / K``. Each level is included with probability
``K / T``, so the estimate is unbiased for the same sum; it costs ``K`` passes.

References:
    Ho, Jain, Abbeel. Denoising Diffusion Probabilistic Models (2020), the level-sampled bound.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["level_sum", "levels_drawn"]


def levels_drawn(batch: int, steps: int, levels: int, device: torch.device) -> Tensor:
    """The levels each example is scored at: every level (``levels = 0`` or ``≥ steps``), else
    ``levels`` distinct levels per example drawn uniformly.

    :param batch: examples ``B``. :param steps: the chain's ``T``.
    :param levels: levels per example (0 = all).
    :returns: long ``[K, B]`` levels in ``1..T`` (row ``k`` holds every example's ``k``-th level).
    """
    if levels <= 0 or levels >= steps:
        return torch.arange(1, steps + 1, device=device).unsqueeze(1).expand(steps, batch)
    order = torch.rand(batch, steps, device=device).argsort(dim=1)
    return (order[:, :levels] + 1).T


def level_sum(
    term: Callable[[Tensor, Tensor], Tensor],
    x0: Tensor,
    steps: int,
    levels: int = 0,
    chunk: int = 8192,
) -> Tensor:
    """``Σₜ term(x0, t)`` over the levels of each example, exact or estimated (module docstring).

    :param term: ``(x [N, *shape], t [N]) -> [N]``, one level's term of each row.
    :param x0: the examples ``[B, *shape]``.
    :param steps: the chain's ``T``. :param levels: levels per example (0 = every level).
    :param chunk: rows per ``term`` call (levels are batched ``chunk // B`` at a time).
    :returns: ``[B]`` — the exact sum, or its unbiased ``T / K``-weighted estimate.
    """
    batch = x0.shape[0]
    chosen = levels_drawn(batch, steps, levels, x0.device)
    total = torch.zeros(batch, device=x0.device)
    per_chunk = max(1, chunk // max(batch, 1))
    for first in range(0, chosen.shape[0], per_chunk):
        block = chosen[first : first + per_chunk]  # [k, B]
        x = x0.repeat(block.shape[0], *([1] * (x0.dim() - 1)))
        total = total + term(x, block.reshape(-1)).reshape(block.shape[0], batch).sum(dim=0)
    return total * (steps / chosen.shape[0])

"""The ELBO of a learned order: ``MashRandom`` whose position choices come from nets.

With ``destroy x[t] ~ MashRandom(x[t-1], order = pick)`` the marginal q(x[t] | x[0]) is a sum
over orders, so the single-level estimate of the masking objective does not apply. Along one
destruction trajectory τ ~ q(· | x[0]) per example,

    f(τ) = Σ_t [log q(x[t] | x[t-1]) − log p(x[t-1] | x[t])]

(the start is all-masked, log p(x[T]) = 0) is an unbiased estimate of the negative ELBO. Its
gradient for the generation (token net and reveal order) is pathwise; for the destruction's
order it adds the score-function term (f − b) ∇ log q(τ), with b the leave-one-out mean of f
over the batch (a baseline that keeps the estimate unbiased; 0 for a batch of one):

    loss = f + (f − b)⊥ · log q(τ)        (⊥: no gradient)

With both orders uniform this is the uniform-order chain, whose loss has the closed form of
:mod:`dtg.channels.mash_random`.

References: Williams 1992, Simple Statistical Gradient-Following Algorithms (REINFORCE); Kool
et al. 2019, Buy 4 REINFORCE Samples, Get a Baseline for Free! (the leave-one-out baseline);
Shih et al. 2022, Training and Inference on Any-Order Autoregressive Models the Right Way
(arXiv 2205.13554).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..channels.base import level_tensor

__all__ = ["order_trajectory_terms", "learned_order_loss"]


def order_trajectory_terms(
    destroy: Any, generate: Any, x0: Tensor, steps: int
) -> tuple[Tensor, Tensor]:
    """``f(τ)`` and ``log q(τ)`` along one destruction trajectory per example.

    :param destroy: the :class:`~dtg.channels.mash_random.MashRandom` channel.
    :param generate: its ``Guess``. :param x0: data, long ``[B, *shape]``.
    :returns: ``(f [B], log_q [B])``, both differentiable (log q through the order net).
    """
    x = x0
    log_q, log_p = [], []  # per level; summed in the terms' own dtype (float64 in a .double())
    for t in range(1, steps + 1):
        level = level_tensor(t, x0.shape[0], x0.device)
        with torch.no_grad():
            following = destroy.sample(x, level)
        log_q.append(destroy.log_prob(following, x, level))
        log_p.append(generate.log_prob(x, following, level))
        x = following
    q, p = torch.stack(log_q).sum(0), torch.stack(log_p).sum(0)
    return q - p, q


def learned_order_loss(destroy: Any, generate: Any, x0: Tensor, steps: int) -> Tensor:
    """The per-example surrogate ``f + (f − b)⊥ log q(τ)``: its value is the NELBO estimate f
    (the second term is 0 in expectation) and its gradient the unbiased ELBO gradient: ``[B]``."""
    f, log_q = order_trajectory_terms(destroy, generate, x0, steps)
    if destroy.order is None:
        return f
    detached = f.detach()
    if f.shape[0] < 2:  # no other example: plain REINFORCE (b = 0), still unbiased
        baseline = torch.zeros_like(detached)
    else:
        baseline = (detached.sum() - detached) / (f.shape[0] - 1)  # leave-one-out
    return f + (detached - baseline) * (log_q - log_q.detach())

"""Order-free scores of a masked-diffusion sample, for fine-tuning (``scoring = …``).

dtg's fine-tuning objectives score a generated sample by the exact log-probability of the
trajectory that generated it (``scoring = trajectory``, on-policy). The recipes popular for
diffusion language models score the *completion* instead, without the order in which it was
generated — estimates that are off-policy with respect to the trajectory:

* ``diffu_grpo`` (d1, Zhao et al. 2025): one pass of the net on the fully masked sample,
  ``Σ_i log p̂(x0_i | all masked)`` (d1 also masks the prompt at rate 0.15; dtg's models have
  no prompt).
* ``coupled`` (DiffuCoder, Gong et al. 2025): a level ``t`` drawn uniformly, a mask ``M`` drawn
  from the destruction's marginal at ``t`` and its complement ``¬M`` (at the level whose masked
  share is nearest the complement's, α_t: ``T − t`` for a linear schedule): each
  token is scored once, ``Σ_{i∈M} log p̂(x0_i | x0 with M masked) + Σ_{i∉M} log p̂(x0_i | x0
  with ¬M masked)``.

Both return per-token log-probabilities ``[B, L]``; the masks are drawn once per sampled batch
so that PPO's old and new log-probabilities use the same ones.

References: Zhao et al. 2025, d1: Scaling Reasoning in Diffusion Large Language Models via
Reinforcement Learning (arXiv 2504.12216), §3.2; Gong et al. 2025, DiffuCoder (arXiv
2506.20639), §4 (coupled-GRPO).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..ir.options import Scoring

__all__ = ["ScoreMasks", "score_masks", "order_free_log_probs", "complement_levels"]

#: ``[(mask [B, L] bool: the positions masked in this pass, level [B] long), …]``.
ScoreMasks = list[tuple[Tensor, Tensor]]


def score_masks(kind: Scoring, model: Any, x0: Tensor, generator=None) -> ScoreMasks:
    """The passes of an order-free score of ``x0`` (long ``[B, *shape]``) under ``model``, a
    compiled model whose destruction is ``Mask`` (its table ``alpha`` gives the marginal).

    :returns: one pass for ``diffu_grpo``, two complementary ones for ``coupled``.
    """
    batch, steps, device = x0.shape[0], model.ir.steps, x0.device
    length = x0[0].numel()
    if kind is Scoring.DIFFU_GRPO:
        every = torch.ones(batch, length, dtype=torch.bool, device=device)
        return [(every, torch.full((batch,), steps, device=device, dtype=torch.long))]
    if kind is not Scoring.COUPLED:
        raise ValueError(f"no order-free score '{kind}'")
    t = torch.randint(1, steps + 1, (batch,), device=device, generator=generator)
    alpha = model.destroy.alpha[t].reshape(batch, -1)  # [B, 1] or per position [B, L]
    u = torch.rand(batch, length, device=device, generator=generator)
    masked = u >= alpha  # masked with probability 1 − α_t, as q(x[t] | x[0])
    return [(masked, t), (~masked, complement_levels(model.destroy.alpha, t))]


def complement_levels(alpha: Tensor, t: Tensor) -> Tensor:
    """For each level ``t``, the level ``s ≥ 1`` whose masked share 1 − α_s is nearest the
    complement's, α_t (``T − t`` for a linear schedule); a per-position schedule is compared by
    its mean over positions.

    :param alpha: ``[T + 1]`` or ``[T + 1, *shape]``. :param t: ``[B]``. :returns: ``[B]``.
    """
    share = alpha.reshape(alpha.shape[0], -1).mean(1)  # [T + 1]
    gap = ((1 - share[1:])[None, :] - share[t][:, None]).abs()  # [B, T]
    return gap.argmin(dim=1) + 1


def order_free_log_probs(guess: Any, x0: Tensor, masks: ScoreMasks) -> Tensor:
    """Per-token log-probabilities of ``x0`` from the passes ``masks``: each position's from the
    pass that masks it (0 where none does).

    :param guess: the ``Guess`` channel (its ``logits(x[t], t)`` and its destruction's ``vocab``).
    :param x0: long ``[B, *shape]``.
    :returns: ``[B, L]``.
    """
    flat = x0.flatten(1)
    passes = []
    for masked, level in masks:
        xt = torch.where(masked, guess.destroy.vocab, flat).reshape(x0.shape)
        log_x0 = guess.logits(xt, level).flatten(1, -2).log_softmax(-1)  # [B, L, V]
        picked = log_x0.gather(-1, flat[..., None]).squeeze(-1)
        passes.append(torch.where(masked, picked, 0.0))
    return torch.stack(passes).sum(0)

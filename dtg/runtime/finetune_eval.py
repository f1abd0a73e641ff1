"""Metrics of a fine-tuned model (RTB, DDPO) next to its frozen prior.

For ``n`` samples of the posterior (the fine-tuned generation chain) and ``n`` of the prior (the
parent's chain, as loaded by ``--init``):

* ``reward_mean``: E[log r(x[0])];
* ``fraction_rewarded``: for ``classify(x, classes = [...])`` rewards, the fraction of samples the
  classifier puts in the rewarded classes (probability of those classes above 1/2);
* ``diversity``: the mean pairwise distance between samples, as a root mean square over
  dimensions (‖x_i − x_j‖ / √D, tokens as their integer values), so that it reads in data units;
* ``mmd_to_prior``: MMD (RBF, median heuristic) between posterior and prior samples, beside
  ``mmd_prior_to_prior`` between two independent prior draws (the figure's noise floor).

The prior's own figures come with a ``prior_`` prefix.

References: Venkatraman et al. 2024, Amortizing intractable inference in diffusion models for
vision, language, and control (arXiv 2405.20971), Table 2; Black et al. 2023, Training diffusion
models with reinforcement learning (arXiv 2305.13301).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from ..ir import expr as ir
from .metrics import mmd_rbf

__all__ = ["evaluate_finetune", "mean_pairwise_distance", "rewarded_classes"]


def rewarded_classes(body: ir.Expr) -> list[int] | None:
    """The ``classes`` of the first ``classify(…)`` call in a reward expression, else ``None``."""
    for node in ir.walk(body):
        if isinstance(node, ir.RewardCall) and node.kind is ir.RewardKind.CLASSIFY:
            return list(node.classes)
    return None


def mean_pairwise_distance(x: Tensor, chunk: int = 1024) -> float:
    """Mean over pairs i ≠ j of ‖x_i − x_j‖ / √D for samples ``x`` ``[N, *shape]`` (N ≥ 2)."""
    flat = x.reshape(x.shape[0], -1).double()
    n, dims = flat.shape
    if n < 2:
        return float("nan")
    total = flat.new_zeros(())
    for start in range(0, n, chunk):  # chunks bound the memory at chunk × N distances
        total = total + torch.cdist(flat[start : start + chunk], flat).sum()
    return float(total / (n * (n - 1)) / math.sqrt(dims))


def _figures(model: Any, x: Tensor, classes: list[int] | None) -> dict[str, float]:
    log_r = model.reward_fn(x).double()
    out = {"reward_mean": float(log_r.mean()), "diversity": mean_pairwise_distance(x)}
    if classes is not None:
        out["fraction_rewarded"] = float((log_r > math.log(0.5)).double().mean())
    return out


@torch.no_grad()
def evaluate_finetune(model: Any, n: int = 1000, seed: int = 0) -> dict[str, float]:
    """Posterior and prior figures of a fine-tuned compiled model (one with ``model.prior``).

    :param model: a compiled child model whose posterior and prior weights are loaded.
    :param n: samples drawn from each chain (≥ 2).
    :param seed: seeds the draws.
    :returns: the figures above, flat: ``reward_mean``, ``diversity``, ``fraction_rewarded``,
        ``mmd_to_prior``, ``mmd_prior_to_prior`` and ``prior_…`` for the prior's own.
    """
    if model.prior is None or model.reward_fn is None:
        return {}
    classes = rewarded_classes(model.ir.reward.body)
    generator_state = torch.get_rng_state()
    try:
        torch.manual_seed(seed)
        posterior = model.sample(n)
        prior = model.prior.sample(n)
        prior_again = model.prior.sample(n)
    finally:
        torch.set_rng_state(generator_state)
    out = _figures(model, posterior, classes)
    out.update({f"prior_{k}": v for k, v in _figures(model, prior, classes).items()})
    as_float = [s.reshape(n, -1).double() for s in (posterior, prior, prior_again)]
    out["mmd_to_prior"] = mmd_rbf(as_float[0], as_float[1])
    out["mmd_prior_to_prior"] = mmd_rbf(as_float[2], as_float[1])
    out["finetune_samples"] = float(n)
    return out

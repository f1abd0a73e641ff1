"""Per-example scores of a trained model (``dtg score``): NELBO for data, log-weights for samplers.

A data model's score of an example x is its negative ELBO, −log p(x) ≤ NELBO(x), in nats (and in
bits per dimension or token): the per-example quantity anomaly detection with these models ranks
by. It is the model's own estimate (``model.nelbo``: one Monte-Carlo draw of the levels and of
the destruction per example for most objectives); ``repeats = K`` averages K independent draws per
example, dividing that noise's variance by K. Scored in batches under one seed, the mean of the
scores is the ``nelbo_nats`` that ``dtg eval`` reports for the same rows and seed.

A sampler has no data: its scores are the log importance weights
log r(x[0]) + log q(τ | x[0]) − log p(τ) of generated trajectories (their log-mean-exp is log Ẑ).

References: Ho et al. 2020 (DDPM's ELBO); Sohl-Dickstein et al. 2015; for likelihood-based
out-of-distribution scores, Nalisnick et al. 2019, "Do deep generative models know what they
don't know?" (arXiv 1810.09136).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from ..data.dequantize import data_bits_per_dim
from .checkpoint import seed_everything
from .sampler_eval import sampler_log_weights

__all__ = ["score_examples", "score_sampler", "auroc", "bits"]


@torch.no_grad()
def score_examples(
    model: Any, rows: Tensor, batch: int = 500, seed: int = 0, repeats: int = 1
) -> Tensor:
    """Per-example negative ELBO of ``rows`` under a compiled data model.

    :param rows: ``[N, *shape]`` in the model's data space (on any device; moved to the model's).
    :param batch: examples per pass (``dtg eval`` scores 500 at a time).
    :param seed: seeds the Monte-Carlo draws.
    :param repeats: independent estimates averaged per example (≥ 1).
    :returns: float64 ``[N]`` in nats, on the CPU.
    """
    was_training = model.training
    model.eval()
    try:
        seed_everything(seed)
        rows = rows.to(model.device)
        total = torch.zeros(rows.shape[0], dtype=torch.float64)
        for _ in range(repeats):
            parts = [model.nelbo(rows[i : i + batch]) for i in range(0, len(rows), batch)]
            total += torch.cat(parts).double().cpu()
        return total / repeats
    finally:
        model.train(was_training)


def bits(model: Any, nats: Tensor, meta: dict) -> Tensor:
    """Scores in bits per dimension (per token for token data), as ``dtg eval`` reports them.

    :param nats: per-example scores ``[N]``. :param meta: the dataset's meta (dequantisation).
    :returns: float64 ``[N]``.
    """
    dims = math.prod(model.ir.message.space.shape)
    offset = data_bits_per_dim(0.0, dims, meta)  # bits are affine in nats: one call each
    scale = data_bits_per_dim(1.0, dims, meta) - offset
    return offset + scale * nats.double().cpu()


@torch.no_grad()
def score_sampler(model: Any, n: int, seed: int = 0, chunk: int = 500) -> Tensor:
    """Log importance weights of ``n`` generated trajectories of a compiled sampler.

    :param seed: seeds the trajectories. :param chunk: trajectories drawn at once.
    :returns: float64 ``[n]`` on the CPU.
    """
    seed_everything(seed)
    weights, _ = sampler_log_weights(model, n, chunk)
    return weights.double().cpu()


def auroc(positive: Tensor, negative: Tensor) -> float:
    """The area under the ROC curve of scores where larger means "positive": the probability
    that a positive example outscores a negative one, ties counted half (Mann–Whitney U).

    :param positive: scores ``[P]``; :param negative: scores ``[N]`` (finite, P, N ≥ 1).
    :returns: the AUROC in [0, 1].
    :raises ValueError: for an empty set or a non-finite score.
    """
    pos, neg = positive.double().flatten(), negative.double().flatten()
    if pos.numel() == 0 or neg.numel() == 0:
        raise ValueError("AUROC needs at least one positive and one negative score")
    ranked = torch.cat([pos, neg])
    if not torch.isfinite(ranked).all():
        raise ValueError("AUROC needs finite scores")
    values, inverse, counts = torch.unique(ranked, return_inverse=True, return_counts=True)
    below = torch.cumsum(counts, 0) - counts  # how many scores lie under each distinct value
    mean_rank = below + (counts + 1) / 2  # ties share the mean of their ranks
    u = mean_rank[inverse[: len(pos)]].sum() - len(pos) * (len(pos) + 1) / 2
    return float(u / (len(pos) * len(neg)))

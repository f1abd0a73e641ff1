"""Evaluation metrics (DESIGN.md §6): held-out negative ELBO, bits/dim, MMD, sliced Wasserstein.

For a data model, :func:`evaluate` reports the negative ELBO of the held-out split in nats per
example and in bits per dimension, for 2-D real data also the MMD and the sliced Wasserstein
distance between ``model.sample(n)`` and held-out points, and for token data and digit images
the sample-quality figures of :mod:`dtg.runtime.sample_quality`. For a sampler (no data) it
reports the sampler metrics of :mod:`dtg.runtime.sampler_eval` (log Ẑ, ESS, and with what the
reward declares: Δlog Z, mode coverage, EUBO, W2). :func:`evaluate_seeds` repeats an evaluation
over seeds and gives each metric's mean, standard error and per-seed values.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ..data.dequantize import data_bits_per_dim
from ..errors import DtgRuntimeError
from .checkpoint import seed_everything
from .finetune_eval import evaluate_finetune
from .loop import DATA_SPLIT_SEED
from .metrics import bits_per_dim, mmd_rbf, sliced_wasserstein
from .sample_quality import sample_quality
from .sampler_eval import evaluate_sampler

# The distances are re-exported: ``from dtg.runtime.evaluate import mmd_rbf`` keeps working.
__all__ = [
    "evaluate",
    "evaluate_seeds",
    "summarize_seeds",
    "mmd_rbf",
    "sliced_wasserstein",
    "bits_per_dim",
]


def evaluate(
    model: Any, n: int = 2000, seed: int = 0, batch: int = 500, max_examples: int | None = None
) -> dict[str, float]:
    """The §6 metrics of a (trained) compiled model.

    :param model: a compiled model; it is put in eval mode for the duration.
    :param n: samples drawn (data models: for MMD / sliced W; samplers: trajectories).
    :param seed: seeds sampling and the random projections.
    :param batch: the held-out split is scored ``batch`` examples at a time.
    :param max_examples: score only the first this many held-out examples (default: all).
    :returns: data models: ``nelbo_nats``, ``bits_per_dim``, ``test_examples``, for 2-D real
        data ``mmd`` and ``sliced_w``, for token data ``token_frequency_tv`` and for digits
        ``class_histogram_tv``, ``confidence_mean``, ``data_confidence_mean`` (see
        :mod:`dtg.runtime.sample_quality`); samplers: see
        :func:`~dtg.runtime.sampler_eval.evaluate_sampler`.
    """
    was_training = model.training
    model.eval()
    try:
        seed_everything(seed)
        if not model.needs_data:
            return evaluate_sampler(model, k=n, seed=seed)
        space = model.ir.message.space
        dataset = model.dataset(DATA_SPLIT_SEED)
        test = dataset.test[:max_examples].to(model.device)
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
            out["bits_per_dim"] = data_bits_per_dim(mean, math.prod(space.shape), dataset.meta)
        if getattr(model, "prior", None) is not None and model.reward_fn is not None:
            out.update(evaluate_finetune(model, n=min(n, 1000), seed=seed))
        if space.kind == "real" and tuple(space.shape) == (2,):
            samples = model.sample(n)
            reference = test[:n]
            out["mmd"] = mmd_rbf(samples, reference)
            generator = torch.Generator().manual_seed(seed)
            out["sliced_w"] = sliced_wasserstein(samples, reference, generator=generator)
        source = getattr(model.ir.message, "source", None)  # None: no data source
        if space.kind == "token" or (source is not None and source.name == "digits"):
            with torch.no_grad():
                samples = model.sample(n)
            out.update(sample_quality(model, samples, test))
        per_level = getattr(model, "per_level_kl", None)  # elbo: kl_level_1 … kl_level_T
        if nelbo is not None and per_level is not None:  # last: the metrics above keep their draws
            out.update(per_level(test, batch))
        return out
    finally:
        model.train(was_training)


def summarize_seeds(runs: list[dict[str, float]]) -> dict[str, dict[str, Any]]:
    """Each metric's mean, standard error and values over runs with different seeds.

    :param runs: one metrics dict per seed (as :func:`evaluate` returns), in seed order.
    :returns: per metric (the first run's keys, in order): ``mean``, ``sem`` (the sample
        standard deviation over √N, ``nan`` for one run) and ``values`` (one per run; ``nan``
        where a run lacks the metric).
    """
    out: dict[str, dict[str, Any]] = {}
    count = len(runs)
    for key in runs[0]:
        values = [float(run.get(key, math.nan)) for run in runs]
        mean = math.fsum(values) / count
        if count > 1 and all(v == values[0] for v in values):
            mean, sem = values[0], 0.0  # exactly, not an ulp of rounding in the mean
        elif count > 1:
            variance = math.fsum((v - mean) ** 2 for v in values) / (count - 1)
            sem = math.sqrt(variance / count)
        else:
            sem = math.nan
        out[key] = {"mean": mean, "sem": sem, "values": values}
    return out


def evaluate_seeds(model: Any, seeds: list[int], **options: Any) -> dict[str, dict[str, Any]]:
    """:func:`evaluate` once per seed, summarised by :func:`summarize_seeds`.

    :param model: a compiled model.
    :param seeds: the seeds, each as ``evaluate(…, seed=s)`` would use it.
    :param options: the other arguments of :func:`evaluate` (``n``, ``batch``, ``max_examples``).
    :returns: per metric ``mean``, ``sem`` and ``values`` (in the order of ``seeds``).
    """
    return summarize_seeds([evaluate(model, seed=seed, **options) for seed in seeds])

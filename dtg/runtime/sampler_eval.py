"""The field's standard metrics for diffusion samplers (Sendera et al. 2024, arXiv 2402.05098).

With K generation trajectories and log-weights w = log r + Σ log q − Σ log p − log p(x[T]):
log Ẑ = mean(w) (a lower bound, the ELBO), log Ẑ_RW = logmeanexp(w) (importance-weighted),
ESS = (Σ e^w)² / (K Σ e^{2w}). What the reward declares of its target
(:class:`~dtg.ir.model.RewardSpec`: ``log_z``, ``modes``, a built-in target's exact samples)
adds Δ to log Z, the mode coverage, the EUBO (mean of w along destruction trajectories started
at exact target samples, an upper bound) and the 2-Wasserstein distance between samples and
exact samples (exact optimal transport on equal-size point sets by the Hungarian algorithm).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from ..objectives.trajectories import destroy_trajectories, sample_trajectories
from ..targets import TARGETS
from ..targets.normalisers import manywell_positive_share

__all__ = [
    "MODE_SHARE",
    "evaluate_sampler",
    "importance_estimates",
    "sampler_log_weights",
    "mode_coverage",
    "wasserstein2",
    "well_sign_errors",
]


def wasserstein2(x: torch.Tensor, y: torch.Tensor) -> float:
    """Exact W2 between two equal-size point sets ``[n, d]`` (uniform weights).

    :param x: ``[n, d]`` points; :param y: ``[n, d]`` points.
    :returns: the distance: the root mean squared length of the optimal matching's pairs.
    """
    from scipy.optimize import linear_sum_assignment  # heavy: scipy.optimize takes ~1 s to import

    a, b = x.detach().double().cpu().numpy(), y.detach().double().cpu().numpy()
    cost = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
    rows, cols = linear_sum_assignment(cost)
    return float(math.sqrt(cost[rows, cols].mean()))


def importance_estimates(log_weights: Tensor) -> dict[str, float]:
    """log Ẑ, log Ẑ_RW and the normalised ESS of a batch of log importance weights.

    A weight of −inf (a sample the reward rules out) counts as a zero weight; NaN and +inf
    weights are dropped.

    :param log_weights: ``[K]`` log-weights w.
    :returns: ``log_z_elbo`` (mean w over the finite ones), ``log_z_rw`` (log mean eʷ) and
        ``ess`` ((Σ eʷ)² / (K Σ e²ʷ), in (0, 1], 1 when all weights are equal).
    """
    w = log_weights.detach().double().flatten()
    w = w[~torch.isnan(w) & (w != math.inf)]
    finite = w[torch.isfinite(w)]
    if len(finite) == 0:
        return {"log_z_elbo": math.nan, "log_z_rw": math.nan, "ess": math.nan}
    k = len(w)
    top = finite.max()
    scaled = torch.exp(w - top)  # exp(-inf) = 0
    return {
        "log_z_elbo": float(finite.mean()),
        "log_z_rw": float(top + torch.log(scaled.sum()) - math.log(k)),
        "ess": float(scaled.sum() ** 2 / (scaled.pow(2).sum() * k)),
    }


#: A mode is covered when at least this share of the samples lies within its radius
#: (Sendera et al. 2024: 1 % of 2,000 samples within 3σ of a 25GMM centre).
MODE_SHARE = 0.01


def mode_coverage(
    samples: Tensor, modes: Any, radius: float, share: float = MODE_SHARE
) -> tuple[float, int]:
    """The fraction of modes holding at least ``share`` of the samples strictly within
    ``radius`` (Euclidean); ``share = 0`` asks for a single sample.

    :param samples: ``[K, *shape]``.
    :param modes: ``[M, D]`` points (``D`` the samples' size), a tensor or nested sequences.
    :param radius: the covering distance.
    :param share: the least fraction of the ``K`` samples a covered mode holds.
    :returns: ``(fraction, count)`` of covered modes.
    """
    points = samples.detach().double().reshape(samples.shape[0], -1).cpu()
    centres = torch.as_tensor(modes, dtype=torch.float64).reshape(-1, points.shape[1])
    held = torch.zeros(len(centres), dtype=torch.float64)
    for start in range(0, len(points), 4096):  # at most 4096 × M distances at once
        chunk = torch.cdist(centres, points[start : start + 4096])
        held += (chunk < radius).sum(dim=1)
    needed = max(1.0, share * len(points))
    covered = int((held >= needed).sum())
    return covered / len(centres), covered


def well_sign_errors(samples: Tensor) -> tuple[float, float]:
    """The many-well's 16 per-well frequencies of the positive well, ``a > 0`` for each pair
    ``(a, b) = (x[2i], x[2i+1])``, against the exact P(a > 0).

    :param samples: ``[K, 32]``.
    :returns: ``(max, mean)`` absolute error over the 16 wells.
    """
    a = samples.detach().double().reshape(samples.shape[0], -1, 2)[..., 0].cpu()
    errors = ((a > 0).double().mean(0) - manywell_positive_share()).abs()
    return float(errors.max()), float(errors.mean())


def sampler_log_weights(model: Any, k: int, chunk: int, exact: torch.Tensor | None = None):
    """Log-weights ``[k]`` log r(x[0]) + log q(τ | x[0]) − log p(τ) of ``k`` generated
    trajectories (or of trajectories destroyed from the rows ``exact``), ``chunk`` at a time.

    :returns: ``(log-weights [k], samples [k, *shape] or None when exact is given)``.
    """
    weights, samples = [], []
    with torch.no_grad():
        for start in range(0, k, chunk):
            n = min(chunk, k - start)
            if exact is None:
                traj = sample_trajectories(model, n)
                samples.append(traj.states[0])
            else:
                traj = destroy_trajectories(model, exact[start : start + n])
            weights.append(traj.log_weight)
    return torch.cat(weights), (torch.cat(samples) if samples else None)


def evaluate_sampler(
    model: Any, k: int = 2000, seed: int = 0, w2_points: int = 1000, chunk: int = 500
) -> dict[str, float]:
    """Metrics of a trained sampler (see the module docstring).

    :param model: a compiled sampler (a model with ``space x`` and a reward).
    :param k: the number of trajectories.
    :param seed: seeds the trajectories and the exact samples.
    :param w2_points: the W2 distance compares this many samples with as many exact ones.
    :param chunk: trajectories drawn at once.
    :returns: ``trajectories``, ``log_z_elbo``, ``log_z_rw``, ``ess``; with a known log Z (a
        built-in target's, or declared ``{ log_z = … }``) also ``log_z``, ``delta_log_z``,
        ``delta_log_z_rw``; with modes ``mode_coverage``, ``modes_covered``, ``modes``; with
        exact samples (a built-in target) ``eubo`` and ``w2``; for ``manywell``
        ``well_sign_error_max`` and ``well_sign_error_mean`` (:func:`well_sign_errors`).
    """
    torch.manual_seed(seed)
    w, samples = sampler_log_weights(model, k, chunk)
    estimates = importance_estimates(w)
    out: dict[str, float] = {"trajectories": float(k), **estimates}
    reward = model.ir.reward
    if reward is None:
        return out
    if reward.log_z is not None:
        out.update(
            log_z=reward.log_z,
            delta_log_z=abs(reward.log_z - estimates["log_z_elbo"]),
            delta_log_z_rw=abs(reward.log_z - estimates["log_z_rw"]),
        )
    if reward.modes:
        fraction, covered = mode_coverage(samples, reward.modes, reward.mode_radius)
        out.update(mode_coverage=fraction, modes_covered=float(covered))
        out["modes"] = float(len(reward.modes))
    if reward.target is not None:
        target = TARGETS[reward.target]
        generator = torch.Generator(device="cpu").manual_seed(seed + 1)
        exact = target.sample(k, generator).to(model.device)
        eubo, _ = sampler_log_weights(model, k, chunk, exact=exact)
        out["eubo"] = float(eubo[torch.isfinite(eubo)].mean())
        n = min(w2_points, k)
        out["w2"] = wasserstein2(samples[:n], exact[:n])
        if reward.target == "manywell":
            out["well_sign_error_max"], out["well_sign_error_mean"] = well_sign_errors(samples)
    return out

"""The field's standard metrics for diffusion samplers (Sendera et al. 2024, arXiv 2402.05098).

With K generation trajectories and log-weights w = log r + Σ log q − Σ log p − log p(x[T]):
log Ẑ = mean(w) (a lower bound, the ELBO), log Ẑ_RW = logmeanexp(w) (importance-weighted),
ESS = (Σ e^w)² / (K Σ e^{2w}); with a built-in target of known log Z, Δ to it, the EUBO (mean of
w along destruction trajectories started at exact target samples, an upper bound), and the
2-Wasserstein distance between samples and exact samples (exact optimal transport on equal-size
point sets by the Hungarian algorithm).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ..objectives.trajectories import destroy_trajectories, sample_trajectories
from ..targets import TARGETS

__all__ = ["evaluate_sampler", "wasserstein2"]


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


def _log_weights(model: Any, k: int, chunk: int, exact: torch.Tensor | None = None):
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

    :param k: the number of trajectories.
    :returns: ``log_z_elbo``, ``log_z_rw``, ``ess`` and, for built-in targets, ``log_z``,
        ``delta_log_z``, ``delta_log_z_rw``, ``eubo``, ``w2``.
    """
    torch.manual_seed(seed)
    w, samples = _log_weights(model, k, chunk)
    finite = torch.isfinite(w)
    w = w[finite]
    log_z_rw = float(torch.logsumexp(w, 0) - math.log(len(w)))
    normalised = torch.exp(w - w.max())
    ess = float(normalised.sum() ** 2 / (normalised.pow(2).sum() * len(w)))
    out: dict[str, float] = {
        "trajectories": float(k),
        "log_z_elbo": float(w.mean()),
        "log_z_rw": log_z_rw,
        "ess": ess,
    }
    reward = model.ir.reward
    if reward is not None and reward.target is not None:
        target = TARGETS[reward.target]
        generator = torch.Generator(device="cpu").manual_seed(seed + 1)
        exact = target.sample(k, generator).to(model.device)
        eubo, _ = _log_weights(model, k, chunk, exact=exact)
        out.update(
            log_z=target.log_z,
            delta_log_z=abs(target.log_z - out["log_z_elbo"]),
            delta_log_z_rw=abs(target.log_z - log_z_rw),
            eubo=float(eubo[torch.isfinite(eubo)].mean()),
        )
        n = min(w2_points, k)
        out["w2"] = wasserstein2(samples[:n], exact[:n])
    return out

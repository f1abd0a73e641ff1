"""Find where a NaN or inf comes from: which parameter, or which channel at which level.

When training meets a non-finite loss or gradient, :func:`first_non_finite` replays the chains
on (a slice of) the batch without gradients, level by level, in the order the objective runs
them, and names the first place a value stops being finite: a net's parameter, the data, the
destruction channel at level t (its sample), the generation channel at level t (its
log-probability of the destruction's step, or its sample for samplers), the start, or the
reward. Log-probabilities may be −inf (an impossible value, e.g. unmasking a wrong token); only
NaN and +inf count there.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..channels.base import level_tensor

__all__ = ["first_non_finite"]


def _bad_values(x: Tensor) -> bool:
    return x.is_floating_point() and not bool(torch.isfinite(x).all())


def _bad_log_prob(x: Tensor) -> bool:
    return bool(torch.isnan(x).any() or (x == float("inf")).any())


def _describe(model: Any, role: str) -> str:
    channel = getattr(model.ir, role)
    nets = ", ".join(sorted(getattr(channel, "nets", ()) or ()))
    family = getattr(getattr(channel, "family", None), "value", "")
    detail = ", ".join(part for part in (family, f"nets: {nets}" if nets else "") if part)
    return f"the {role} channel" + (f" ({detail})" if detail else "")


@torch.no_grad()
def first_non_finite(model: Any, data: Tensor | int, limit: int = 64) -> str | None:
    """Where the first non-finite value appears, in words; ``None`` when the replay is finite.

    :param model: a compiled model.
    :param data: the batch that failed (``[B, *shape]``) or, for samplers, its size.
    :param limit: replay at most this many examples.
    """
    for name, parameter in model.named_parameters():
        if _bad_values(parameter):
            return f"the parameter {name} is not finite"
    steps = model.ir.steps
    device = model.device
    if isinstance(data, Tensor):
        x = data[:limit].to(device)
        if _bad_values(x):
            return "the data batch itself"
        n = x.shape[0]
        x0 = x
        marginal = getattr(model.destroy, "marginal", None)  # what denoising samples from
        for t in range(1, steps + 1):
            level = level_tensor(t, n, device)
            if marginal is not None and _bad_values(marginal(x0, level, torch.randn_like(x0))):
                return f"{_describe(model, 'destroy')} at level t = {t} (q(x[{t}] | x[0]))"
            following = model.destroy.sample(x, level)
            if _bad_values(following):
                return f"{_describe(model, 'destroy')} at level t = {t} (its sample x[{t}])"
            if _bad_log_prob(model.generate.log_prob(x, following, level)):
                return (
                    f"{_describe(model, 'generate')} at level t = {t} (log p(x[{t - 1}] | x[{t}]))"
                )
            x = following
        if _bad_log_prob(model.start.log_prob(x, None, level_tensor(steps, n, device))):
            return f"the start p(x[{steps}])"
        return None
    n = min(int(data), limit)
    x = model.start.sample(None, level_tensor(steps, n, device))
    if _bad_values(x):
        return f"the start p(x[{steps}]) (its sample)"
    for t in range(steps, 0, -1):
        level = level_tensor(t, n, device)
        previous = model.generate.sample(x, level)
        if _bad_values(previous):
            return f"{_describe(model, 'generate')} at level t = {t} (its sample x[{t - 1}])"
        if _bad_log_prob(model.destroy.log_prob(x, previous, level)):
            return f"{_describe(model, 'destroy')} at level t = {t} (log q(x[{t}] | x[{t - 1}]))"
        x = previous
    if model.reward_fn is not None and _bad_log_prob(model.reward_fn(x)):
        return f"the reward '{model.ir.reward.name}' of the samples x[0]"
    return None

"""The gradient of a log-reward by autograd: what ``grad(logr, x[t])`` and local search read.

One function, so that the kernels' ``grad`` (:class:`dtg.ir.expr.RewardGrad`) and MALA
(:mod:`dtg.objectives.local_search`) treat a reward the same way: the value is detached (an input,
never a path for second-order terms), non-finite entries are 0, a reward that does not depend on
``x`` (a constant, or a plug-in computed outside autograd) has gradient 0.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["log_reward_and_grad"]


def log_reward_and_grad(
    log_r_fn: Callable[[Tensor], Tensor], x: Tensor, clip: float | None = None
) -> tuple[Tensor, Tensor]:
    """log r(x) and ∇ₓ log r(x), both detached; works under ``torch.no_grad`` too.

    :param log_r_fn: ``[B, *shape] → [B]`` (or a 0-d value for a constant reward).
    :param x: ``[B, *shape]``, floating point.
    :param clip: clip each gradient entry to ``[-clip, clip]`` (``None``: no clip).
    :returns: ``([B] or 0-d, [B, *shape])``.
    """
    with torch.enable_grad():
        point = x.detach().requires_grad_(True)
        log_r = log_r_fn(point)
        if log_r.requires_grad:
            (grad,) = torch.autograd.grad(log_r.sum(), point, allow_unused=True)
        else:
            grad = None
    if grad is None:  # the reward does not depend on x
        grad = torch.zeros_like(point)
    grad = torch.where(torch.isfinite(grad), grad, torch.zeros_like(grad))
    if clip is not None:
        grad = grad.clamp(-clip, clip)
    return log_r.detach(), grad.detach()

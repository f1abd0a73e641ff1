"""Trajectories of the generation chain with their log-probabilities, vectorised over the batch.

A generation trajectory runs x[T] → x[T-1] → … → x[0]. Along it we record, per trajectory,
``log p(x[T])`` (the start), ``log p(x[t-1] | x[t])`` (forward, generation) and
``log q(x[t] | x[t-1])`` (backward, destruction), and the log-reward ``log r(x[0])``. A singleton
start and a destruction step into it contribute 0. States are detached (the chain is a sampling
policy); the log-probabilities carry gradients to the nets that produced them.

Backward trajectories start at given x[0] (exact target samples, or a replay buffer) and run the
destruction chain x[0] → … → x[T]; the same quantities are recorded along them.

References: Malkin et al. 2022 (trajectory balance, arXiv 2201.13259); Sendera et al. 2024
(arXiv 2402.05098), whose log-weight is w = log r + Σ log q − Σ log p.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ..channels.base import level_tensor
from ..channels.gaussian import gaussian_log_prob

__all__ = [
    "Trajectories",
    "sample_trajectories",
    "destroy_trajectories",
    "generation_log_probs",
    "clip_residuals",
]


@dataclass
class Trajectories:
    """A batch of trajectories.

    :param states: ``[T + 1]`` tensors, ``states[t]`` is x[t] ``[B, *shape]`` (detached).
    :param log_start: ``[B]`` log p(x[T]).
    :param log_pf: ``[B, T]``; column ``t - 1`` is log p(x[t-1] | x[t]).
    :param log_pb: ``[B, T]``; column ``t - 1`` is log q(x[t] | x[t-1]).
    :param log_reward: ``[B]`` log r(x[0]).
    """

    states: list[Tensor]
    log_start: Tensor
    log_pf: Tensor
    log_pb: Tensor
    log_reward: Tensor

    @property
    def log_weight(self) -> Tensor:
        """w = log r + Σ log q − Σ log p − log p(x[T]): ``[B]`` (log Ẑ = mean w)."""
        return self.log_reward + self.log_pb.sum(1) - self.log_pf.sum(1) - self.log_start

    def cat(self, other: Trajectories) -> Trajectories:
        return Trajectories(
            [torch.cat([a, b]) for a, b in zip(self.states, other.states, strict=True)],
            torch.cat([self.log_start, other.log_start]),
            torch.cat([self.log_pf, other.log_pf]),
            torch.cat([self.log_pb, other.log_pb]),
            torch.cat([self.log_reward, other.log_reward]),
        )


def _widened(std: Tensor, explore: float) -> Tensor:
    """sqrt(std² + explore²), computed in the tensor's dtype (``explore ** 2`` of a huge
    ``explore`` overflows Python's float; torch gives inf, which the NaN check then reports)."""
    return torch.hypot(std, torch.as_tensor(explore, dtype=std.dtype, device=std.device))


def clip_residuals(per: Tensor, clip: float | None) -> Tensor:
    """``per`` clamped at ``clip`` (the ``clip`` option of the balance objectives); a clip beyond
    the dtype's range clips nothing (torch refuses a bound it cannot represent).

    :param clip: the option's value, or ``None``/0 for no clipping.
    """
    if not clip or float(clip) >= torch.finfo(per.dtype).max:
        return per
    return per.clamp(max=float(clip))


def _generate_step(generate: Any, x: Tensor, t: Tensor, explore: float) -> Tensor:
    """One generation step, drawn from exactly the kernel whose log-probability is recorded
    (for Gaussian kernels also at t = 1), with optional extra exploration noise."""
    with torch.no_grad():
        if hasattr(generate, "mean_std"):
            mean, std = generate.mean_std(x, t)
            if explore:
                std = _widened(std, explore)
            return mean + std * torch.randn_like(mean)
        return generate.sample(x, t)


def sample_trajectories(
    model: Any, n: int, explore: float = 0.0, with_destruction: bool = True
) -> Trajectories:
    """Run the generation chain for ``n`` trajectories.

    :param explore: extra generation noise std (off-policy exploration); log-probabilities are
        still those of the policy, so the balance losses stay correct.
    :param with_destruction: also record log q(x[t] | x[t-1]) (zeros otherwise).
    """
    steps, device = model.ir.steps, model.device
    level = level_tensor(steps, n, device)
    x = model.start.sample(None, level).detach()
    log_start = model.start.log_prob(x, None, level)
    states: list[Tensor] = [x]
    # Per level only what the next level needs (the draw); the log-probabilities of all levels
    # are scored afterwards in one call each, over T·B rows (the same values, far fewer calls).
    means, stds, log_pf = [], [], []
    gaussian = hasattr(model.generate, "mean_std")
    for t in range(steps, 0, -1):
        level = level_tensor(t, n, device)
        if gaussian:
            # One net evaluation per step: sample from the detached parameters and score
            # the sample with the same (differentiable) parameters.
            mean, std = model.generate.mean_std(x, level)
            behaviour = _widened(std.detach(), explore) if explore else std.detach()
            previous = (mean.detach() + behaviour * torch.randn_like(mean)).detach()
            means.append(mean)
            stds.append(std.expand_as(mean))
        else:
            previous = _generate_step(model.generate, x, level, explore).detach()
            log_pf.append(model.generate.log_prob(previous, x, level))
        states.append(previous)
        x = previous
    # states run x[T], …, x[0]; row block k of the stacks is the step from level T − k
    later, earlier = torch.cat(states[:-1]), torch.cat(states[1:])
    if gaussian:
        flat = gaussian_log_prob(earlier, torch.cat(means), torch.cat(stds))
    else:
        flat = torch.cat(log_pf)
    levels = torch.arange(steps, 0, -1, device=device).repeat_interleave(n)
    if with_destruction:
        back = model.destroy.log_prob(later, earlier, levels)
    else:
        back = torch.zeros_like(flat).detach()
    states.reverse()  # states[t] is x[t]
    reward = model.reward_fn(x) if model.reward_fn is not None else torch.zeros_like(log_start)
    return Trajectories(states, log_start, _by_level(flat, n), _by_level(back, n), reward)


def _by_level(flat: Tensor, n: int) -> Tensor:
    """``[T·B]`` rows in generation order (level T first) as ``[B, T]``, column ``t − 1`` level t."""
    return flat.reshape(-1, n).flip(0).T.contiguous()  # as a stack of columns: sums round alike


def generation_log_probs(model: Any, states: list[Tensor]) -> tuple[Tensor, Tensor]:
    """log p(x[T]) ``[B]`` and log p(x[t-1] | x[t]) ``[B, T]`` of given states under ``model``."""
    steps, device = model.ir.steps, model.device
    n = states[0].shape[0]
    log_start = model.start.log_prob(states[steps], None, level_tensor(steps, n, device))
    columns = [
        model.generate.log_prob(states[t - 1], states[t], level_tensor(t, n, device))
        for t in range(1, steps + 1)
    ]
    return log_start, torch.stack(columns, 1)


def destroy_trajectories(model: Any, x0: Tensor) -> Trajectories:
    """Run the destruction chain from given ``x0`` ``[B, *shape]`` (exact samples or replay)."""
    steps, device = model.ir.steps, model.device
    n = x0.shape[0]
    x = x0.detach()
    states = [x]
    log_pf, log_pb = [], []
    for t in range(1, steps + 1):
        level = level_tensor(t, n, device)
        with torch.no_grad():
            following = model.destroy.sample(x, level).detach()
        log_pb.append(model.destroy.log_prob(following, x, level))
        log_pf.append(model.generate.log_prob(x, following, level))
        states.append(following)
        x = following
    log_start = model.start.log_prob(x, None, level_tensor(steps, n, device))
    return Trajectories(
        states, log_start, torch.stack(log_pf, 1), torch.stack(log_pb, 1), model.reward_fn(x0)
    )

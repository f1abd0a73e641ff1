"""``Guess`` for Gaussian destruction: the destruction's posterior at a predicted x[0].

p(x[t-1] | x[t]) = q(x[t-1] | x[t], x̂[0]) with x̂[0] from the net's prediction of ε, x[0] or v
(diffusers' ``prediction_type``). The variance is the posterior's (``variance = posterior``,
DDPM's σ_t² = β̃_t) or β_t (``variance = beta``). At t = 1 the posterior variance is 0: the
decoder p(x[0] | x[1]) uses β_1 for its likelihood (Ho et al. 2020), and sampling returns the
mean at the last step.

References: Ho, Jain, Abbeel (2020), Denoising Diffusion Probabilistic Models, arXiv 2006.11239.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from .base import Channel, sum_event
from .gaussian import LinearGaussian, normal_log_prob

__all__ = ["GaussianGuess"]


class GaussianGuess(Channel):
    """The learned reverse kernel of a linear-Gaussian chain.

    :param destroy: the destruction channel (its tables give the posterior).
    :param net: closure ``(x[t] [B, *shape], t [B] long) -> prediction [B, *shape]``.
    :param predict: ``epsilon``, ``sample`` or ``v_prediction``.
    :param variance: ``posterior`` or ``beta``.
    :param clip: clamp x̂[0] to [−clip, clip] (DDPM's ``clip_denoised``), or ``None``.
    """

    def __init__(
        self,
        destroy: LinearGaussian,
        net: Callable[[Tensor, Tensor], Tensor],
        predict: str = "epsilon",
        variance: str = "posterior",
        clip: float | None = None,
    ) -> None:
        super().__init__()
        self.destroy, self.net, self.predict, self.variance = destroy, net, predict, variance
        self.clip = clip

    def x0(self, xt: Tensor, t: Tensor) -> Tensor:
        """x̂[0] = the net's guess of the data, ``[B, *shape]`` (clamped to ±clip if set)."""
        x0 = self.destroy.predict_x0(xt, self.net(xt, t), t, self.predict)
        return x0.clamp(-self.clip, self.clip) if self.clip is not None else x0

    def params(self, xt: Tensor, t: Tensor, decoder: bool = True) -> tuple[Tensor, Tensor]:
        """Mean ``[B, *shape]`` and variance ``[B, 1…]`` (``[B, *shape]`` for a per-coordinate
        destruction) of p(x[t-1] | x[t]).

        :param decoder: use β_1 where the posterior variance is 0 (for likelihoods).
        """
        mean, post_var = self.destroy.posterior(xt, self.x0(xt, t), t)
        beta = self.destroy.beta[t].reshape(post_var.shape)
        var = beta if self.variance == "beta" else post_var
        if decoder:
            var = torch.where(var > 0, var, beta)
        return mean, var

    def mean_std(self, xt: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and std of the kernel whose ``log_prob`` this channel reports (β_1 at t = 1)."""
        mean, var = self.params(xt, t)
        return mean, var.sqrt().expand_as(mean)

    def sample(self, source: Tensor | None, t: Tensor, generator=None) -> Tensor:
        assert source is not None
        mean, var = self.params(source, t, decoder=False)
        noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        last = (t == 1).reshape(t.shape + (1,) * (var.dim() - 1))  # the last step: the mean
        return mean + torch.where(last, torch.zeros_like(var), var).sqrt() * noise

    def log_prob(self, value: Tensor, source: Tensor | None, t: Tensor) -> Tensor:
        assert source is not None
        mean, var = self.params(source, t)
        return sum_event(normal_log_prob(value, mean, var.sqrt().expand_as(mean)))

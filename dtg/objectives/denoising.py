"""The ``denoising`` objective for linear-Gaussian destruction (DDPM and its reweightings).

One level per example is sampled (uniformly, or by importance with the second-moment resampler
of Nichol & Dhariwal 2021), x[t] is drawn from the closed-form marginal, and the loss is

* ``weight = simple``: the mean squared error of the net's prediction (ε, x[0] or v);
* ``weight = min_snr``: the same, weighted by min(SNR_t, γ)/SNR_t (ε), min(SNR_t, γ) (x[0]) or
  min(SNR_t, γ)/(SNR_t + 1) (v) (Hang et al. 2023);
* ``weight = elbo``: T · KL(q(x[t-1] | x[t], x[0]) ‖ p(x[t-1] | x[t])) for t ≥ 2, the decoder's
  −log p(x[0] | x[1]) at t = 1, plus KL(q(x[T] | x[0]) ‖ p(x[T])): its mean over examples and
  levels is the negative ELBO in nats.

:func:`nelbo` sums every level for each example (an unbiased single-sample estimate per level).

References: Ho et al. 2020 (arXiv 2006.11239); Nichol & Dhariwal 2021 (arXiv 2102.09672);
Hang et al. 2023, Efficient Diffusion Training via Min-SNR Weighting (arXiv 2303.09556).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..channels.base import sum_event
from ..channels.gaussian import LinearGaussian, NormalStart, normal_log_prob
from ..channels.guess import GaussianGuess
from .level_sum import level_sum

__all__ = ["Denoising", "gaussian_kl", "level_terms"]

_HISTORY = 10


def gaussian_kl(mean_q: Tensor, var_q: Tensor, mean_p: Tensor, var_p: Tensor) -> Tensor:
    """Elementwise KL(N(mean_q, var_q) ‖ N(mean_p, var_p))."""
    return 0.5 * (torch.log(var_p / var_q) + (var_q + (mean_q - mean_p) ** 2) / var_p - 1.0)


def level_terms(
    destroy: LinearGaussian, generate: GaussianGuess, x0: Tensor, t: Tensor, noise: Tensor
) -> Tensor:
    """The ELBO term of level ``t`` for each example: KL for t ≥ 2, decoder NLL at t = 1.

    :param x0: data ``[B, *shape]``; :param t: levels ``[B]`` in 1..T; :param noise: ``[B, *shape]``.
    :returns: ``[B]`` nats.
    """
    xt = destroy.marginal(x0, t, noise)
    mean_p, var_p = generate.params(xt, t)
    mean_q, var_q = destroy.posterior(xt, x0, t)
    first = (t == 1).reshape(t.shape + (1,) * (var_q.dim() - 1))
    safe_q = torch.where(first, torch.ones_like(var_q), var_q)
    kl = sum_event(gaussian_kl(mean_q, safe_q.expand_as(mean_q), mean_p, var_p.expand_as(mean_p)))
    decoder = -sum_event(normal_log_prob(x0, mean_p, var_p.sqrt().expand_as(mean_p)))
    return torch.where(t == 1, decoder, kl)


class Denoising(nn.Module):
    """The denoising loss of one compiled model.

    :param destroy: the linear-Gaussian destruction.
    :param generate: the ``Guess`` generation kernel.
    :param start: the Normal start p(x[T]).
    :param options: ``weight``, ``gamma``, ``sampling`` (from the objective statement).
    """

    def __init__(
        self, destroy: LinearGaussian, generate: GaussianGuess, start: NormalStart, options: dict
    ) -> None:
        super().__init__()
        self.destroy, self.generate, self.start = destroy, generate, start
        self.weight = options.get("weight", "simple")
        self.gamma = float(options.get("gamma", 5.0))
        self.sampling = options.get("sampling", "uniform")
        steps = destroy.a.shape[0] - 1
        self.steps = steps
        # Second-moment history per level for importance sampling (kept in checkpoints).
        self.register_buffer("history", torch.zeros(steps + 1, _HISTORY))
        self.register_buffer("history_count", torch.zeros(steps + 1, dtype=torch.long))

    def sample_levels(self, batch: int, device: torch.device) -> tuple[Tensor, Tensor]:
        """Levels ``[B]`` in 1..T and their importance weights ``[B]`` (1 when uniform)."""
        if self.sampling == "importance" and bool((self.history_count[1:] >= _HISTORY).all()):
            second = self.history[1:].pow(2).mean(dim=1).sqrt()
            probs = second / second.sum()
            probs = probs * (1 - 1e-3) + 1e-3 / self.steps
            index = torch.multinomial(probs, batch, replacement=True)
            return index + 1, 1.0 / (self.steps * probs[index])
        t = torch.randint(1, self.steps + 1, (batch,), device=device)
        return t, torch.ones(batch, device=device)

    def forward(self, x0: Tensor) -> Tensor:
        """The scalar loss for a data batch ``x0`` of shape ``[B, *shape]``."""
        if self.weight == "simple" and self.sampling == "uniform":
            # The common case, kept as lean as the hand-written DDPM step.
            t = torch.randint(1, self.steps + 1, (x0.shape[0],), device=x0.device)
            noise = torch.randn_like(x0)
            xt = self.destroy.marginal(x0, t, noise)
            target = self.destroy.target(x0, noise, t, self.generate.predict)
            return (self.generate.net(xt, t) - target).pow(2).mean()
        t, weights = self.sample_levels(x0.shape[0], x0.device)
        noise = torch.randn_like(x0)
        if self.weight == "elbo":
            per_example = self.steps * level_terms(self.destroy, self.generate, x0, t, noise)
            per_example = per_example + self.prior_kl(x0)
        else:
            xt = self.destroy.marginal(x0, t, noise)
            prediction = self.generate.net(xt, t)
            target = self.destroy.target(x0, noise, t, self.generate.predict)
            error = (prediction - target).pow(2)
            weight = self.min_snr_weight(t) if self.weight == "min_snr" else None
            if weight is not None and weight.dim() > 1:  # per coordinate: each its own SNR
                error = error * weight
            per_example = error.flatten(1).mean(dim=1)
            if weight is not None and weight.dim() == 1:
                per_example = per_example * weight
        if self.sampling == "importance":
            self._remember(t, per_example.detach())
        return (per_example * weights).mean()

    def min_snr_weight(self, t: Tensor) -> Tensor:
        """Min-SNR-γ weights at levels ``t``: ``[B]`` (``[B, *shape]`` per coordinate)."""
        snr = self.destroy.snr(t)
        clamped = torch.clamp(snr, max=self.gamma)
        if self.generate.predict == "epsilon":
            return clamped / snr
        if self.generate.predict == "sample":
            return clamped
        return clamped / (snr + 1)

    def prior_kl(self, x0: Tensor) -> Tensor:
        """KL(q(x[T] | x[0]) ‖ p(x[T])) per example: ``[B]``."""
        steps = self.steps
        mean = self.destroy.mean[steps] * x0
        var = self.destroy.var[steps]
        if var.dim() == 0:  # one variance for every coordinate (else [*shape], per coordinate)
            var = var.expand(1).reshape((1,) * x0.dim())
        return self.start.kl_from(mean, var)

    def sums_levels(self) -> bool:
        """:meth:`nelbo` sums one term per level (so ``levels`` can sample them)."""
        return True

    def nelbo(self, x0: Tensor, chunk: int = 65536, levels: int = 0) -> Tensor:
        """The negative ELBO of each example, every level summed, or estimated from ``levels``
        levels per example (:func:`~dtg.objectives.level_sum.level_sum`): ``[B]`` nats."""

        def term(x: Tensor, t: Tensor) -> Tensor:
            return level_terms(self.destroy, self.generate, x, t, torch.randn_like(x))

        return self.prior_kl(x0) + level_sum(term, x0, self.steps, levels, chunk)

    def _remember(self, t: Tensor, losses: Tensor) -> None:
        """Append each example's loss to its level's history (the last ``_HISTORY`` kept), in
        batch order: grouped by level, one update per level present instead of per example."""
        order = torch.argsort(t, stable=True)
        levels, counts = torch.unique_consecutive(t[order], return_counts=True)
        chunks = torch.split(losses[order].to(self.history.dtype), counts.tolist())
        for level, chunk in zip(levels.tolist(), chunks, strict=True):
            count = int(self.history_count[level])
            merged = torch.cat([self.history[level, :count], chunk])[-_HISTORY:]
            self.history[level, : len(merged)] = merged
            self.history_count[level] = len(merged)

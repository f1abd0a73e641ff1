"""The ``masking`` objective: the negative ELBO of discrete destruction (Mask, MashLast, Shuffle).

With x[t] ~ q(x[t] | x[0]) drawn in closed form at one level ``t`` per example, the loss is the
single-level estimate ``T · L_t(x[0], x[t]) + prior`` of the negative ELBO, whose mean over levels
is exact (``nelbo`` sums every level):

* ``Mask`` (absorbing, SUBS generation): ``L_t = w_t · Σ_{i masked in x[t]} −log p̂(x0_i | x[t])``
  with the exact discrete-time weight ``w_t = (α_{t-1} − α_t)/(1 − α_t)`` (the KL of the masked
  positions' posteriors; ``w_1 = 1`` is the reconstruction term), or with ``time = continuous``
  MDLM's ``w(t) = −α'(t)/(1 − α(t))``, α(t) = g(t)/g(0) from a telescoping ``keep = g(t)/g(t-1)``,
  differentiated by sympy and tabulated on the model's levels. The prior term is 0 (all masked).
* ``MashRandom`` (one uniformly chosen position per level): ``L_t = (1/t) Σ_{i masked in x[t]}
  −log p̂(x0_i | x[t])``, the any-order autoregressive loss (the position choices of destruction
  and generation cancel).
* ``MashLast``: ``L_t = −log p̂(x0_{L−t} | x[t])``; summed over levels, the next-token
  cross-entropy of an autoregressive model. With a causal net that takes no time
  (``transformer(causal = true)``) that whole sum is computed from one call on x[0], so every
  position is scored per step instead of one.
* ``Shuffle`` and a hybrid ``Mask`` (``redraw``): ``L_t = KL(q(x[t-1] | x[t], x[0]) ‖
  p(x[t-1] | x[t]))`` for t ≥ 2, ``−log p(x[0] | x[1])`` at t = 1, plus ``KL(q(x[T] | x[0]) ‖
  p(x[T]))`` (D3PM's L_{t-1}, L_0, L_T; 0 for the hybrid's all-masked end).

With a learned order (``MashRandom(x[t-1], order = NET)`` or ``Guess(…, order = NET)``) the
loss is the negative ELBO along one destruction trajectory per example, with a score-function
term for the destruction's order (:mod:`dtg.objectives.orders`).

``loss = epsilon_hybrid`` trains a hybrid ``Mask`` by hdlm's ε-hybrid weighting instead (a
heuristic, not a bound; :meth:`Masking.epsilon_hybrid_loss`); ``nelbo`` stays the exact ELBO.

Levels are drawn uniformly, or stratified (``sampling = antithetic``, the default):
``t_i = 1 + ⌊T · ((u + i/B) mod 1)⌋`` with one ``u ~ U[0, 1)`` per batch.

References: Sahoo et al. 2024 (MDLM, arXiv 2406.07524), eqs. 8–10; Austin et al. 2021 (D3PM,
arXiv 2107.03006), eq. 1 and §3; Kingma et al. 2021 (VDM, arXiv 2107.00630), antithetic times.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..channels.base import level_tensor, sum_event
from ..channels.discrete import level_view
from ..channels.hybrid import HybridGuess, HybridMask
from ..channels.mash_random import MashRandom, MashRandomGuess
from ..channels.mask import MashLast, MashLastGuess, Mask, MaskGuess, unmask_rates
from ..channels.shuffle import Shuffle, ShuffleGuess
from ..errors import DtgRuntimeError
from ..ir.options import MaskingLoss
from .level_sum import level_sum
from .orders import learned_order_loss, order_trajectory_terms

__all__ = ["Masking", "antithetic_levels"]


def antithetic_levels(batch: int, steps: int, device: torch.device) -> Tensor:
    """Stratified levels ``[B]`` in ``1..T``: ``1 + ⌊T · ((u + i/B) mod 1)⌋``."""
    u = torch.rand((), device=device)
    grid = (u + torch.arange(batch, device=device) / batch) % 1.0
    return (1 + torch.floor(steps * grid).long()).clamp(1, steps)


class Masking(nn.Module):
    """The masking loss of one compiled model.

    :param model: the :class:`~dtg.backends.torch.CompiledModel` (its ``destroy``, ``start``
        and ``generate`` channels and its IR).
    :param options: ``time`` (``discrete`` | ``continuous``), ``sampling`` (``antithetic`` |
        ``uniform``).
    :raises DtgRuntimeError: for channels without a masking ELBO (the checker refuses those
        models first, with their location; this guards models built by hand).
    """

    def __init__(self, model: Any, options: dict) -> None:
        super().__init__()
        self.ir, self.source_text = model.ir, getattr(model.program, "source", None)
        self.destroy, self.generate, self.start = model.destroy, model.generate, model.start
        self.steps = model.ir.steps
        self.time = options.get("time", "discrete")
        self.sampling = options.get("sampling", "antithetic")
        self.loss_kind = MaskingLoss(options.get("loss") or MaskingLoss.ELBO)
        self.hybrid_weight = float(options.get("hybrid_weight") or 1.0)
        pairs = {
            Mask: MaskGuess,
            MashLast: MashLastGuess,
            Shuffle: ShuffleGuess,
            HybridMask: HybridGuess,
            MashRandom: MashRandomGuess,
        }
        kind = type(self.destroy)
        if kind not in pairs or not isinstance(self.generate, pairs[kind]):
            raise self._error(
                "masking needs Mask, MashLast, MashRandom or Shuffle destruction with Guess"
            )
        weights = np.ones(self.steps + 1)
        if kind is Mask:
            alpha = self.destroy.alpha.double().cpu().numpy()
            weights = unmask_rates(alpha)
            if self.time == "continuous":  # the checker tabulated it (and refused what has none)
                weights = self.ir.marginals["continuous_weight"]
        self.register_buffer("weights", torch.as_tensor(weights, dtype=torch.float32))

    def _error(self, message: str, *hints: str) -> DtgRuntimeError:
        return DtgRuntimeError(message, self.ir.objective.span, self.source_text, hints=list(hints))

    # ------------------------------------------------------------------ levels
    def sample_levels(self, batch: int, device: torch.device) -> Tensor:
        """Levels ``[B]`` in ``1..T`` (stratified or uniform)."""
        if self.sampling == "antithetic":
            return antithetic_levels(batch, self.steps, device)
        return torch.randint(1, self.steps + 1, (batch,), device=device)

    def level_loss(self, x0: Tensor, xt: Tensor, t: Tensor) -> Tensor:
        """The ELBO term ``L_t`` of level ``t`` at a given ``x[t]`` (deterministic): ``[B]`` nats.

        :param x0: data, long ``[B, *shape]``. :param xt: x[t], long ``[B, *shape]``.
        :param t: levels ``[B]`` in ``1..T``.
        """
        if isinstance(self.destroy, (Shuffle, HybridMask)):  # D3PM's KL over the states
            return self._shuffle_term(x0, xt, t)
        if isinstance(self.destroy, MashRandom):  # the position choices cancel
            return self.generate.level_nll(x0, xt, t)
        logits = self.generate.logits(xt, t).flatten(1, -2)  # [B, L, V]
        target = x0.flatten(1)
        if isinstance(self.destroy, MashLast):
            position = self.destroy.position(t)[:, None]
            here = logits.gather(1, position[..., None].expand(-1, 1, logits.shape[-1]))
            return F.cross_entropy(
                here.squeeze(1), target.gather(1, position).squeeze(1), reduction="none"
            )
        flat = logits.reshape(-1, logits.shape[-1])
        ce = F.cross_entropy(flat, target.reshape(-1), reduction="none").view_as(target)  # [B, L]
        masked = xt.flatten(1) == self.destroy.vocab
        weights = self.weights[t].to(ce.dtype)  # [B], or [B, *shape] per position
        if weights.dim() > 1:
            return (weights.flatten(1) * torch.where(masked, ce, 0.0)).sum(1)
        return weights * torch.where(masked, ce, 0.0).sum(1)

    def epsilon_hybrid_loss(
        self, x0: Tensor, xt: Tensor, masked: Tensor, redrawn: Tensor, t: Tensor
    ) -> Tensor:
        """hdlm's ε-hybrid loss of a hybrid ``Mask`` (``loss = epsilon_hybrid``; a heuristic
        weighting, **not** a bound): ``Σ_i w_i · −log p̂(x0_i | x[t])`` with ``w = 1/p`` on masked
        positions (``p = 1 − a_t``, their probability), ``λ(1 − ε)`` on redrawn ones and ``λε``
        on the rest (``ε = 1 − c_t``, the probability of a redraw so far; λ =
        ``hybrid_weight``).

        :param masked: bool ``[B, *shape]``; :param redrawn: bool ``[B, *shape]`` (from
            :meth:`~dtg.channels.hybrid.HybridMask.marginal_with_flags`).
        :returns: ``[B]``.
        """
        logits = self.generate.logits(xt, t).flatten(1, -2)  # [B, L, V]
        ce = F.cross_entropy(logits.transpose(1, 2), x0.flatten(1), reduction="none")  # [B, L]
        full = x0.shape
        p = (1 - level_view(self.destroy.alpha[t], x0)).expand(full).flatten(1).to(ce.dtype)
        eps = (1 - level_view(self.destroy.never[t], x0)).expand(full).flatten(1).to(ce.dtype)
        lam = self.hybrid_weight
        kept = torch.where(redrawn.flatten(1), lam * (1 - eps), lam * eps)
        weight = torch.where(masked.flatten(1), 1 / p.clamp_min(1e-4), kept)
        return (weight * ce).sum(1)

    def _shuffle_term(self, x0: Tensor, xt: Tensor, t: Tensor) -> Tensor:
        log_p = self.generate.log_probs(xt, t)  # [B, *shape, V]
        one_hot = F.one_hot(x0, self.destroy.vocab).to(log_p.dtype)
        log_q = self.destroy.posterior_log_probs(xt, torch.log(one_hot), t)
        q = log_q.exp()
        kl = sum_event(torch.where(q > 0, q * (log_q - log_p), 0.0).sum(-1))
        decoder = -sum_event(log_p.gather(-1, x0.unsqueeze(-1)).squeeze(-1))
        return torch.where(t == 1, decoder, kl)

    def prior(self, x0: Tensor) -> Tensor:
        """``KL(q(x[T] | x[0]) ‖ p(x[T]))`` per example: ``[B]`` (0 for an all-masked end)."""
        if not isinstance(self.destroy, Shuffle):
            return torch.zeros(x0.shape[0], device=x0.device)
        t = level_tensor(self.steps, x0.shape[0], x0.device)
        log_q = self.destroy.marginal_log_probs(x0, t)
        log_p = self.start.log_probs(None, t)
        q = log_q.exp()
        return sum_event(torch.where(q > 0, q * (log_q - log_p), 0.0).sum(-1))

    def _learned_order(self) -> bool:
        """A ``MashRandom`` with an order net on either side: the marginal of x[t] is not
        known, so the ELBO is estimated along whole destruction trajectories."""
        return isinstance(self.destroy, MashRandom) and (
            self.destroy.order is not None or self.generate.order is not None
        )

    def _one_pass(self) -> bool:
        """A causal net without time scores every level of ``MashLast`` or of a staircase
        ``Mask`` in one call (exact sum)."""
        return bool(getattr(self.generate, "one_pass", False))

    def sums_levels(self) -> bool:
        """Whether :meth:`nelbo` sums one term per level (so ``levels`` can sample them)."""
        return not (self._one_pass() or self._learned_order())

    # ------------------------------------------------------------------ the interface
    def forward(self, x0: Tensor) -> Tensor:
        """The scalar loss for a data batch ``x0`` (long ``[B, *shape]``): the mean single-level
        estimate of the negative ELBO, nats per example."""
        if self._one_pass():
            return self.generate.sequence_nll(x0).mean()
        if self._learned_order():
            return learned_order_loss(self.destroy, self.generate, x0, self.steps).mean()
        t = self.sample_levels(x0.shape[0], x0.device)
        if self.loss_kind is MaskingLoss.EPSILON_HYBRID:  # a heuristic, not the ELBO
            xt, masked, redrawn = self.destroy.marginal_with_flags(x0, t)
            return self.epsilon_hybrid_loss(x0, xt, masked, redrawn, t).mean()
        xt = self.destroy.marginal(x0, t)
        per_example = self.steps * self.level_loss(x0, xt, t)
        if isinstance(self.destroy, Shuffle):  # the prior is 0 for an all-masked end
            per_example = per_example + self.prior(x0)
        return per_example.mean()

    def nelbo(self, x0: Tensor, chunk: int = 8192, levels: int = 0) -> Tensor:
        """The negative ELBO of each example, every level summed (one x[t] per level; exact for
        ``MashLast`` and for ``Mask`` with ``time = discrete`` in expectation), or estimated
        from ``levels`` levels per example (:func:`~dtg.objectives.level_sum.level_sum`; a
        one-pass or learned-order model is scored whole either way): ``[B]`` nats."""
        if self._one_pass():
            return self.generate.sequence_nll(x0)
        if self._learned_order():  # one destruction trajectory per example: unbiased
            return order_trajectory_terms(self.destroy, self.generate, x0, self.steps)[0]

        def term(x: Tensor, t: Tensor) -> Tensor:
            return self.level_loss(x, self.destroy.marginal(x, t), t)

        return self.prior(x0) + level_sum(term, x0, self.steps, levels, chunk)

"""Hybrid destruction: ``Mask(x[t-1], keep = k, redraw = r)``, absorbing and uniform noise.

Per step and position, an unmasked value is masked with probability ``1 − k``; kept, it is
redrawn uniformly from the ``V`` values (possibly the same) with probability ``r``; ``[MASK]``
(id ``V``) is absorbing. With ``a_t = ∏ k`` (still unmasked) and ``c_t = ∏ (1 − r)`` (never
redrawn), the marginal of a position is

    q(x[t] | x[0]) = α_t δ(x[0]) + β_t Uniform(V) + (1 − α_t − β_t) δ([MASK]),
    α_t = a_t c_t,  β_t = a_t (1 − c_t),

the hybrid noising of Fathi et al. 2025 (α, β per position for a hyperschedule). Generation is
the exact posterior at the net's x̂[0], as for ``Shuffle`` (D3PM):
``p(x[t-1] = j | x[t]) ∝ q(x[t] | x[t-1] = j) · Σ_{x0} q(x[t-1] = j | x0) p̂(x0 | x[t])`` over
the ``V + 1`` states, so it may change an unmasked token (uniform noise may have changed it).
The ``masking`` objective is D3PM's exact ELBO over these states.

References: Fathi, Scholak and Noël 2025, Unifying Autoregressive and Diffusion-Based Sequence
Generation (arXiv 2504.06416), §4 (hybrid noising); Austin et al. 2021 (D3PM, arXiv
2107.03006), eqs. 1–3.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..marginals import discrete_alpha
from .discrete import DiscreteChannel, level_view, sample_categorical
from .shuffle import ShuffleGuess

__all__ = ["HybridMask", "HybridGuess"]

#: Stands for log 0 where a log-probability meets ``logaddexp`` (two −∞ give a NaN gradient).
_LOG_ZERO = -1e30


def _log(values: Tensor) -> Tensor:
    return torch.log(values).clamp_min(_LOG_ZERO)


class HybridMask(DiscreteChannel):
    """``x[t] ~ Mask(x[t-1], keep = k(t), redraw = r(t))`` over ``V`` values plus ``[MASK]``.

    :param keep: ``[T + 1]`` or ``[T + 1, *shape]`` float64 keep probabilities.
    :param redraw: the same shape, the probability that a kept position is redrawn uniformly.
    :param vocab: ``V``.
    """

    def __init__(self, keep: np.ndarray, redraw: np.ndarray, vocab: int) -> None:
        super().__init__()
        unmasked = self._register_keep(keep, vocab)  # self.alpha holds a_t here
        never = discrete_alpha(1.0 - np.asarray(redraw, dtype=np.float64))["alpha"]
        self.register_buffer("redraw", torch.as_tensor(redraw, dtype=torch.float32))
        self.register_buffer("never", torch.as_tensor(never, dtype=torch.float32), persistent=False)
        self.register_buffer("clean", torch.as_tensor(unmasked * never, dtype=torch.float32))
        self.register_buffer(
            "noisy", torch.as_tensor(unmasked * (1.0 - never), dtype=torch.float32)
        )

    # ------------------------------------------------------------------ per position, [.., V+1]
    def _step_probs(self, source: Tensor, t: Tensor) -> Tensor:
        """``q(x[t] | x[t-1] = source)``: ``[B, *shape, V + 1]``."""
        one_hot = F.one_hot(source, self.vocab + 1).float()
        keep = level_view(self.keep[t], one_hot)
        redraw = level_view(self.redraw[t], one_hot)
        values = keep * (1 - redraw) * one_hot[..., : self.vocab] + keep * redraw / self.vocab
        moved = torch.cat([values, (1 - keep).expand(*values.shape[:-1], 1)], dim=-1)
        return torch.where(one_hot[..., self.vocab :] > 0, one_hot, moved)

    def log_probs(self, source: Tensor | None, t: Tensor) -> Tensor:
        """``log q(x[t] | x[t-1])`` per position: ``[B, *shape, V + 1]``."""
        assert source is not None
        return torch.log(self._step_probs(source, t))

    def marginal_log_probs(self, x0: Tensor, t: Tensor) -> Tensor:
        """``log q(x[t] | x[0])`` per position: ``[B, *shape, V + 1]``."""
        one_hot = F.one_hot(x0, self.vocab).float()
        return self._mixture(torch.log(one_hot), t)

    def marginal(self, x0: Tensor, t: Tensor, generator=None) -> Tensor:
        """A draw of ``x[t] ~ q(x[t] | x[0])``: ``[B, *shape]``."""
        return sample_categorical(self.marginal_log_probs(x0, t), generator)

    def marginal_with_flags(self, x0: Tensor, t: Tensor, generator=None) -> tuple[Tensor, ...]:
        """A draw of ``x[t] ~ q(x[t] | x[0])`` that also says which positions were masked and
        which redrawn (a redraw may land on the same value): ``(x[t], masked, redrawn)``, each
        ``[B, *shape]`` (the ε-hybrid loss weights by them)."""
        unmasked = level_view(self.alpha[t], x0)  # a_t
        never = level_view(self.never[t], x0)  # c_t
        u = torch.rand((2, *x0.shape), generator=generator, device=x0.device)
        masked = u[0] >= unmasked
        redrawn = ~masked & (u[1] >= never)
        fresh = torch.randint(self.vocab, x0.shape, generator=generator, device=x0.device)
        xt = torch.where(masked, self.vocab, torch.where(redrawn, fresh, x0))
        return xt, masked, redrawn

    def _mixture(self, log_x0: Tensor, t: Tensor) -> Tensor:
        """``log Σ_{x0} q(x[t] = j | x0) p̂(x0)`` for ``j = 0..V``: ``[B, *shape, V + 1]``.

        :param log_x0: ``[B, *shape, V]`` log-probabilities of x[0]."""
        clean = level_view(self.clean[t], log_x0).to(log_x0.dtype)
        noisy = level_view(self.noisy[t], log_x0).to(log_x0.dtype)
        values = torch.logaddexp(_log(clean) + log_x0, _log(noisy) - math.log(self.vocab))
        masked = torch.log1p(-(clean + noisy)).expand_as(log_x0[..., :1])
        return torch.cat([values, masked], dim=-1)

    def posterior_log_probs(self, xt: Tensor, log_x0: Tensor, t: Tensor) -> Tensor:
        """``log`` of ∝ q(x[t] | x[t-1] = j)·Σ q(x[t-1] = j | x0) p̂(x0), normalised over the
        ``V + 1`` states ``j`` (a one-hot x̂[0] gives the exact q(x[t-1] | x[t], x[0])).

        :param xt: long ``[B, *shape]``. :param log_x0: ``[B, *shape, V]``.
        :returns: ``[B, *shape, V + 1]``.
        """
        previous = self._mixture(log_x0, t - 1)
        # q(x[t] | x[t-1] = j) for every j: the likelihood of the observed x[t].
        one_hot = F.one_hot(xt, self.vocab + 1).to(log_x0.dtype)
        keep = level_view(self.keep[t], one_hot).to(log_x0.dtype)
        redraw = level_view(self.redraw[t], one_hot).to(log_x0.dtype)
        seen = keep * (1 - redraw) * one_hot[..., : self.vocab] + keep * redraw / self.vocab
        is_mask = one_hot[..., self.vocab :] > 0
        from_value = torch.where(is_mask, (1 - keep).expand_as(seen), seen)
        likelihood = torch.cat([from_value, is_mask.to(seen.dtype)], dim=-1)
        joint = torch.log(likelihood) + previous
        return joint - joint.logsumexp(-1, keepdim=True)


class HybridGuess(ShuffleGuess):
    """``Guess`` for a hybrid ``Mask``: the destruction's posterior at the net's x̂[0], as
    :class:`~dtg.channels.shuffle.ShuffleGuess` computes it (here over ``V + 1`` states, so every
    position, masked or not, may change).

    :param destroy: the :class:`HybridMask` channel.
    :param net: closure ``(x[t] [B, *shape], t [B] long) -> logits [B, *shape, V]``.
    """

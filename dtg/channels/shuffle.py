"""Uniform destruction: ``Shuffle`` and its ``Guess`` (D3PM with uniform transitions).

* :class:`Shuffle`: each position is kept with probability ``keep(t)``, else resampled uniformly
  from the ``V`` values (the resample may return the same value), so
  q(x[t] | x[t-1]) = keep·δ + (1 − keep)/V and the marginal is
  q(x[t] | x[0]) = α_t·onehot(x[0]) + (1 − α_t)/V with α_t = ∏_{k≤t} keep(k).
* :class:`ShuffleGuess`: the D3PM x[0]-parameterisation
  p(x[t-1] = j | x[t]) ∝ q(x[t] | x[t-1] = j) · Σ_{x0} q(x[t-1] = j | x0) p̂(x0 | x[t])
  = (keep_t δ_{j, x[t]} + (1 − keep_t)/V) · (α_{t-1} p̂_j + (1 − α_{t-1})/V).

References: Austin et al. 2021, Structured Denoising Diffusion Models in Discrete State-Spaces
(D3PM, arXiv 2107.03006), eq. 4 and §3 (uniform transition matrices); Hoogeboom et al. 2021,
Argmax Flows and Multinomial Diffusion (arXiv 2102.05379).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from .base import sum_event
from .discrete import DiscreteChannel, NetGuess, level_view

__all__ = ["Shuffle", "ShuffleGuess"]


def _mix(log_p: Tensor, weight: Tensor, vocab: int) -> Tensor:
    """``log(weight·p + (1 − weight)/V)`` elementwise from ``log p`` (stable at weight 0 or 1)."""
    return torch.logaddexp(torch.log(weight) + log_p, torch.log1p(-weight) - math.log(vocab))


class Shuffle(DiscreteChannel):
    """``x[t] ~ Shuffle(x[t-1], keep = keep(t))`` over ``V`` values.

    :param keep: ``[T + 1]`` float64 keep probabilities (entry 0 unused), or ``[T + 1, *shape]``
        per position.
    :param vocab: ``V``.
    """

    def __init__(self, keep: np.ndarray, vocab: int) -> None:
        super().__init__()
        self._register_keep(keep, vocab)

    def _redraw(self, x: Tensor, stay: Tensor, generator) -> Tensor:
        u = torch.rand(x.shape, generator=generator, device=x.device)
        fresh = torch.randint(self.vocab, x.shape, generator=generator, device=x.device)
        return torch.where(u < level_view(stay, x), x, fresh)

    def sample(self, source: Tensor | None, t: Tensor, generator=None) -> Tensor:
        """:returns: long ``[B, *shape]``."""
        assert source is not None
        return self._redraw(source, self.keep[t], generator)

    def log_probs(self, source: Tensor | None, t: Tensor) -> Tensor:
        """``log q(x[t] | x[t-1])`` per position: ``[B, *shape, V]``."""
        assert source is not None
        return self._kernel_log_probs(source, self.keep[t])

    def log_prob(self, value: Tensor, source: Tensor | None, t: Tensor) -> Tensor:
        """Exact ``log q(x[t] | x[t-1])``: ``[B]`` (``-inf`` for ids outside ``0..V-1``)."""
        assert source is not None
        keep = level_view(self.keep[t], source).expand(source.shape)
        same = torch.log(keep + (1 - keep) / self.vocab)
        other = torch.log1p(-keep) - math.log(self.vocab)
        out = torch.where(value == source, same, other)
        return sum_event(torch.where(value < self.vocab, out, torch.full_like(out, -torch.inf)))

    def _kernel_log_probs(self, x: Tensor, weight: Tensor) -> Tensor:
        one_hot = torch.nn.functional.one_hot(x, self.vocab).float()
        log_one_hot = torch.where(one_hot > 0, 0.0, -torch.inf)
        return _mix(log_one_hot, level_view(weight, one_hot), self.vocab)

    def marginal(self, x0: Tensor, t: Tensor, generator=None) -> Tensor:
        """A draw of ``x[t] ~ q(x[t] | x[0])``: ``[B, *shape]``."""
        return self._redraw(x0, self.alpha[t], generator)

    def marginal_log_probs(self, x0: Tensor, t: Tensor) -> Tensor:
        """``log q(x[t] | x[0])`` per position: ``[B, *shape, V]``."""
        return self._kernel_log_probs(x0, self.alpha[t])

    def posterior_log_probs(self, xt: Tensor, log_x0: Tensor, t: Tensor) -> Tensor:
        """``log`` of ∝ q(x[t] | x[t-1] = j)·Σ q(x[t-1] = j | x0) p̂(x0), normalised over j.

        :param xt: long ``[B, *shape]``. :param log_x0: ``[B, *shape, V]`` log-probabilities of
            x[0] (a one-hot gives the exact posterior q(x[t-1] | x[t], x[0])).
        :returns: ``[B, *shape, V]``.
        """
        previous = _mix(log_x0, level_view(self.alpha[t - 1], log_x0).to(log_x0.dtype), self.vocab)
        joint = self._kernel_log_probs(xt, self.keep[t]).to(log_x0.dtype) + previous
        return joint - joint.logsumexp(-1, keepdim=True)


class ShuffleGuess(NetGuess):
    """``Guess`` for ``Shuffle``: :meth:`Shuffle.posterior_log_probs` at the net's x̂[0].

    :param destroy: the :class:`Shuffle` channel.
    :param net: closure ``(x[t] [B, *shape], t [B] long) -> logits [B, *shape, V]``.
    """

    def log_probs(self, source: Tensor | None, t: Tensor) -> Tensor:
        """``log p(x[t-1] | x[t])`` per position: ``[B, *shape, V]``."""
        assert source is not None
        log_x0 = self.logits(source, t).log_softmax(-1)
        return self.destroy.posterior_log_probs(source, log_x0, t)

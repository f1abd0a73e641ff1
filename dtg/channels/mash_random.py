"""Uniform-order destruction: ``x[t] ~ MashRandom(x[t-1])`` and its ``Guess``.

* :class:`MashRandom` masks one unmasked position chosen uniformly (``T = L``): level ``t``
  holds ``x[0]`` with a uniformly random set of ``t`` positions masked (the thesis's
  ``MashOneRandomUnmaskedToken``). ``q(x[t] | x[t-1]) = 1 / (L − t + 1)`` for each allowed step.
* :class:`MashRandomGuess` reveals one masked position chosen uniformly, with a value from the
  net's softmax there: ``p(x[t-1] | x[t]) = (1/t) · p̂(x[0]_i | x[t])``.

The position choices cancel in the ELBO (Σ_t log(1/t) = Σ_t log(1/(L − t + 1)) = −log L!), so
the negative ELBO is the expected any-order autoregressive loss
``E_order Σ_t −log p̂(x[0]_{i_t} | x[t])``; one level's unbiased term is
``(1/t) Σ_{i masked in x[t]} −log p̂(x[0]_i | x[t])`` (the revealed position is uniform among the
``t`` masked ones).

References: Uria et al. 2014, A Deep and Tractable Density Estimator (order-agnostic training,
arXiv 1310.1757); Hoogeboom et al. 2022, Autoregressive Diffusion Models (arXiv 2110.02037);
Ou et al. 2024, Your Absorbing Discrete Diffusion Secretly Models the Conditional
Distributions of Clean Data (arXiv 2406.03736).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import Channel
from .discrete import NetGuess, sample_categorical

__all__ = ["MashRandom", "MashRandomGuess", "position_log_probs"]


Order = Callable[[Tensor, Tensor], Tensor]


def _pick(allowed: Tensor, generator) -> Tensor:
    """One allowed position per row, uniformly: ``allowed`` bool ``[B, L]`` → long ``[B, 1]``."""
    u = torch.rand(allowed.shape, generator=generator, device=allowed.device)
    return torch.where(allowed, u, -1.0).argmax(dim=1, keepdim=True)


def position_log_probs(order: Order | None, x: Tensor, t: Tensor, allowed: Tensor) -> Tensor:
    """``log`` of the position distribution over the ``allowed`` positions: uniform without an
    order net, else the softmax of its scores there: ``[B, L]`` (``-inf`` elsewhere).

    :param order: closure ``(x [B, *shape], t [B]) -> scores [B, *shape]``, or ``None``.
    :param allowed: bool ``[B, L]``.
    """
    if order is None:
        scores = torch.zeros(allowed.shape, device=allowed.device)
    else:
        scores = order(x, t).flatten(1)
        scores = scores.to(torch.promote_types(scores.dtype, torch.float32))
    return torch.where(allowed, scores, -torch.inf).log_softmax(dim=1)


def _draw(log_probs: Tensor, generator) -> Tensor:
    """One position per row from ``log_probs`` ``[B, L]``: long ``[B, 1]``."""
    return sample_categorical(log_probs.detach(), generator)[:, None]


class MashRandom(Channel):
    """``x[t] ~ MashRandom(x[t-1])``: mask one unmasked position chosen uniformly.

    :param shape: the message's shape (``L`` positions = ``T``).
    :param vocab: ``V`` (``[MASK]`` is id ``V``).
    :param order: a learned order (``order = NET``): closure ``(x[t-1], t) -> scores
        [B, *shape]``; the position is drawn from their softmax over the unmasked positions.
    """

    def __init__(self, shape: tuple[int, ...], vocab: int, order: Order | None = None) -> None:
        super().__init__()
        self.shape, self.vocab = tuple(shape), int(vocab)
        self.length = int(torch.tensor(shape).prod()) if shape else 1
        self.order = order

    def sample(self, source: Tensor | None, t: Tensor, generator=None) -> Tensor:
        """:returns: ``source`` with one of its unmasked positions masked: ``[B, *shape]``."""
        assert source is not None
        flat = source.flatten(1)
        if self.order is None:
            position = _pick(flat != self.vocab, generator)
        else:
            position = _draw(
                position_log_probs(self.order, source, t, flat != self.vocab), generator
            )
        return flat.scatter(1, position, self.vocab).reshape(source.shape)

    def log_prob(self, value: Tensor, source: Tensor | None, t: Tensor) -> Tensor:
        """``log q(i | source)`` of the masked position ``i`` (``−log #unmasked`` without an
        order net) when ``value`` is ``source`` with exactly one unmasked position masked,
        ``-inf`` otherwise: ``[B]``."""
        assert source is not None
        before, after = source.flatten(1), value.flatten(1)
        changed = before != after
        masked_now = changed & (before != self.vocab) & (after == self.vocab)
        valid = (changed.sum(1) == 1) & (masked_now.sum(1) == 1)
        log_q = position_log_probs(self.order, source, t, before != self.vocab)
        term = torch.where(masked_now, log_q, 0.0).sum(1)
        return torch.where(valid, term, torch.full_like(term, -torch.inf))

    def marginal(self, x0: Tensor, t: Tensor, generator=None) -> Tensor:
        """x[t] given x[0]: a uniformly random set of ``t`` positions masked: ``[B, *shape]``."""
        flat = x0.flatten(1)
        u = torch.rand(flat.shape, generator=generator, device=flat.device)
        rank = u.argsort(dim=1).argsort(dim=1)  # a uniform random permutation's ranks
        hidden = rank < t[:, None]
        return torch.where(hidden, self.vocab, flat).reshape(x0.shape)


class MashRandomGuess(NetGuess):
    """``Guess`` for ``MashRandom``: reveal one masked position chosen uniformly, with a value
    drawn from the net's softmax there; the rest is carried over.

    :param destroy: the :class:`MashRandom` channel.
    :param net: closure ``(x[t] [B, *shape], t [B] long) -> logits [B, *shape, V]``.
    :param order: a learned reveal order (``Guess(…, order = NET)``): closure ``(x[t], t) ->
        scores [B, *shape]``, softmax over the masked positions; uniform without it.
    """

    def __init__(self, destroy: nn.Module, net: Callable, order: Order | None = None) -> None:
        super().__init__(destroy, net)
        self.order = order

    def sample(self, source: Tensor | None, t: Tensor, generator=None) -> Tensor:
        """:returns: ``x[t-1]``: long ``[B, *shape]``."""
        assert source is not None
        flat = source.flatten(1)
        allowed = flat == self.destroy.vocab
        if self.order is None:
            position = _pick(allowed, generator)  # [B, 1]
        else:
            position = _draw(position_log_probs(self.order, source, t, allowed), generator)
        logits = self.logits(source, t).flatten(1, -2)  # [B, L, V]
        here = logits.gather(1, position[..., None].expand(-1, 1, logits.shape[-1]))
        value = sample_categorical(here.squeeze(1).float(), generator)  # [B]
        return flat.scatter(1, position, value[:, None]).reshape(source.shape)

    def log_prob(self, value: Tensor, source: Tensor | None, t: Tensor) -> Tensor:
        """``log(1/#masked) + log p̂(value_i | source)`` when ``value`` reveals exactly one
        masked position ``i`` of ``source``, ``-inf`` otherwise: ``[B]``."""
        assert source is not None
        before, after = source.flatten(1), value.flatten(1)
        vocab = self.destroy.vocab
        changed = before != after
        revealed = changed & (before == vocab) & (after != vocab)
        valid = (changed.sum(1) == 1) & (revealed.sum(1) == 1)
        log_x0 = self.logits(source, t).flatten(1, -2).log_softmax(-1)  # [B, L, V]
        picked = log_x0.gather(-1, after.clamp_max(vocab - 1)[..., None]).squeeze(-1)
        log_pos = position_log_probs(self.order, source, t, before == vocab).to(picked.dtype)
        term = torch.where(revealed, picked + log_pos, 0.0).sum(1)
        return torch.where(valid, term, torch.full_like(term, -torch.inf))

    def level_nll(self, x0: Tensor, xt: Tensor, t: Tensor) -> Tensor:
        """The ELBO term of level ``t``: ``(1/t) Σ_{i masked in x[t]} −log p̂(x0_i | x[t])``,
        ``[B]`` nats (the position choices cancel against the destruction's)."""
        logits = self.logits(xt, t).flatten(1, -2)  # [B, L, V]
        ce = F.cross_entropy(logits.transpose(1, 2), x0.flatten(1), reduction="none")  # [B, L]
        masked = xt.flatten(1) == self.destroy.vocab
        return torch.where(masked, ce, 0.0).sum(1) / t.to(ce.dtype)

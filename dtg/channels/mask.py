"""Absorbing destruction: ``Mask``, ``MashLast``, and their ``Guess`` generation kernels.

* :class:`Mask`: each unmasked position is independently masked with probability
  ``1 − keep(t)``; ``[MASK]`` (id ``V``) is absorbing. Marginal: keep ``x[0]`` with probability
  ``α_t = ∏_{k≤t} keep(k)``, else ``[MASK]``. Posterior q(x[t-1] | x[t], x[0]): an unmasked
  position stays; a masked one is ``x[0]`` with probability ``r_t = (α_{t-1} − α_t)/(1 − α_t)``,
  else stays masked.
* :class:`MaskGuess`: that posterior at the net's predicted distribution of x[0] — MDLM's SUBS
  parameterisation (the ``[MASK]`` logit is −∞, unmasked positions are carried over).
* :class:`MashLast`: deterministic, masks the last unmasked position (``T = L``), so level ``t``
  holds the first ``L − t`` positions. :class:`MashLastGuess` fills position ``L − t`` from the
  net's logits there: left-to-right (autoregressive) generation.

Positions of a multi-dimensional message are taken in row-major (flattened) order.

References: Sahoo et al. 2024, Simple and Effective Masked Diffusion Language Models (MDLM,
arXiv 2406.07524); Austin et al. 2021 (D3PM, arXiv 2107.03006), absorbing-state diffusion.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..nets.decode import can_decode, decode_left_to_right
from .base import Channel, sum_event
from .discrete import (
    DiscreteChannel,
    NetGuess,
    causal_sequence_nll,
    level_view,
    sample_categorical,
)

__all__ = [
    "Mask",
    "MaskGuess",
    "MashLast",
    "MashLastGuess",
    "unmask_rates",
    "revealed_positions",
    "is_staircase",
]

Predict = Callable[[Tensor, Tensor], Tensor]


def unmask_rates(alpha: np.ndarray) -> np.ndarray:
    """``r_t = (α_{t-1} − α_t)/(1 − α_t)`` for ``t = 1..T`` (0 where ``α_t = 1``); ``r_0 = 0``.

    :param alpha: ``[T + 1]`` or ``[T + 1, *shape]`` float64. :returns: the same shape, float64
        in ``[0, 1]``.
    """
    rates = np.zeros_like(alpha)
    with np.errstate(all="ignore"):
        rates[1:] = (alpha[:-1] - alpha[1:]) / (1.0 - alpha[1:])
    return np.clip(np.nan_to_num(rates, nan=0.0, posinf=0.0), 0.0, 1.0)


def revealed_positions(rates: np.ndarray) -> Tensor | None:
    """The positions each level unmasks when every per-position rate is 0 or 1 and each level
    unmasks the same number ``k`` of them: long ``[T + 1, k]`` (row 0 unused), else ``None``.

    :param rates: ``[T + 1, *shape]`` per-position unmasking probabilities.
    """
    if rates.ndim < 2 or not np.isin(rates[1:], (0.0, 1.0)).all():
        return None
    flat = rates.reshape(len(rates), -1)
    counts = flat[1:].sum(axis=1)
    if counts.min() != counts.max() or counts[0] == 0:
        return None
    rows = [np.zeros(int(counts[0]), dtype=np.int64)]
    rows += [np.flatnonzero(row) for row in flat[1:]]
    return torch.as_tensor(np.stack(rows))


def is_staircase(alpha: np.ndarray) -> bool:
    """Whether α(t, i) is the autoregressive staircase: 1 for ``i < L − t``, else 0 (``T = L``)."""
    if alpha.ndim < 2:
        return False
    flat = alpha.reshape(len(alpha), -1)
    steps, length = len(flat) - 1, flat.shape[1]
    if steps != length:
        return False
    expected = np.arange(length)[None, :] < (length - np.arange(steps + 1))[:, None]
    return bool(np.array_equal(flat, expected.astype(np.float64)))


class LeftToRight:
    """What a left-to-right ``Guess`` (``MashLast``, a staircase ``Mask``) adds when its net is
    causal without time: :meth:`sample_sequence`, generation with a key/value cache."""

    #: The net as a one-element tuple (not a submodule: its weights belong to the model).
    _decoder: tuple[nn.Module, ...] = ()

    def set_decoder(self, net: nn.Module | None) -> None:
        self._decoder = (net,) if net is not None else ()

    def sample_sequence(self, n: int, device: torch.device, generator=None) -> Tensor | None:
        """x[0] for ``n`` sequences generated left to right with the cache, drawing from the
        random stream exactly as level-by-level generation does; ``None`` when the net cannot
        be decoded so (training mode, another architecture): then generate level by level.

        :returns: long ``[n, L]`` or ``None``.
        """
        if not self._decoder or not can_decode(self._decoder[0]):
            return None

        def draw(logits: Tensor) -> Tensor:
            return sample_categorical(logits.float(), generator)

        return decode_left_to_right(self._decoder[0], n, draw, device)


def _log(values: Tensor) -> Tensor:
    return torch.log(values)  # log 0 = -inf is the intended value


class Mask(DiscreteChannel):
    """``x[t] ~ Mask(x[t-1], keep = keep(t))`` over ``V`` values plus ``[MASK] = V``.

    :param keep: ``[T + 1]`` float64 keep probabilities (entry 0 unused), or ``[T + 1, *shape]``
        per position (a hyperschedule: each position its own ``keep``, ``α`` and ``r``).
    :param vocab: ``V``.
    """

    def __init__(self, keep: np.ndarray, vocab: int) -> None:
        super().__init__()
        alpha = self._register_keep(keep, vocab)
        rates = unmask_rates(alpha)
        self.register_buffer("rate", torch.as_tensor(rates, dtype=torch.float32))
        reveal = revealed_positions(rates)
        #: ``[T + 1, k]`` positions unmasked at each level when the schedule is deterministic
        #: with ``k`` per level (a staircase or one-level blocks), else ``None``.
        self.register_buffer("reveal", reveal, persistent=False)
        #: Whether the schedule is the autoregressive staircase (position ``L − t`` at ``t``).
        self.staircase = is_staircase(alpha)

    def sample(self, source: Tensor | None, t: Tensor, generator=None) -> Tensor:
        """:returns: long ``[B, *shape]``; masked positions stay masked."""
        assert source is not None
        u = torch.rand(source.shape, generator=generator, device=source.device)
        return torch.where(u < level_view(self.keep[t], source), source, self.vocab)

    def log_prob(self, value: Tensor, source: Tensor | None, t: Tensor) -> Tensor:
        """Exact ``log q(x[t] | x[t-1])``: ``[B]`` (``-inf`` when inconsistent)."""
        assert source is not None
        keep = level_view(self.keep[t], source).expand(source.shape)
        masked = source == self.vocab
        stays = torch.where(masked, torch.zeros_like(keep), _log(keep))
        lost = torch.where(masked, torch.full_like(keep, -torch.inf), _log(1 - keep))
        out = torch.where(value == source, stays, torch.full_like(keep, -torch.inf))
        return sum_event(torch.where(value == self.vocab, torch.maximum(out, lost), out))

    def log_probs(self, source: Tensor | None, t: Tensor) -> Tensor:
        """``[B, *shape, V + 1]``: ``log keep`` on the value, ``log(1 − keep)`` on ``[MASK]``."""
        assert source is not None
        one_hot = torch.nn.functional.one_hot(source, self.vocab + 1).float()
        keep = level_view(self.keep[t], one_hot)
        probs = keep * one_hot
        probs[..., self.vocab] = probs[..., self.vocab] + (1 - keep[..., 0])
        return _log(probs)

    def marginal(self, x0: Tensor, t: Tensor, generator=None) -> Tensor:
        """A draw of ``x[t] ~ q(x[t] | x[0])``: keep with probability ``α_t``: ``[B, *shape]``."""
        u = torch.rand(x0.shape, generator=generator, device=x0.device)
        return torch.where(u < level_view(self.alpha[t], x0), x0, self.vocab)

    def marginal_log_probs(self, x0: Tensor, t: Tensor) -> Tensor:
        """``log q(x[t] | x[0])`` per position: ``[B, *shape, V + 1]``."""
        one_hot = torch.nn.functional.one_hot(x0, self.vocab + 1).float()
        alpha = level_view(self.alpha[t], one_hot)
        probs = alpha * one_hot
        probs[..., self.vocab] = probs[..., self.vocab] + (1 - alpha[..., 0])
        return _log(probs)

    def posterior_log_probs(self, xt: Tensor, log_x0: Tensor, t: Tensor) -> Tensor:
        """``log q(x[t-1] | x[t], x̂[0])`` with x̂[0] a distribution: ``[B, *shape, V + 1]``.

        :param xt: long ``[B, *shape]``. :param log_x0: ``[B, *shape, V]`` log-probabilities of
            x[0] (a one-hot gives the exact posterior; a net's ``log_softmax`` gives SUBS).
        """
        rate = level_view(self.rate[t], log_x0)
        masked_row = torch.cat([_log(rate) + log_x0, _log(1 - rate).expand_as(log_x0[..., :1])], -1)
        carried = F.one_hot(xt, self.vocab + 1).to(log_x0.dtype)
        carried = torch.where(carried > 0, 0.0, -torch.inf)
        return torch.where((xt == self.vocab).unsqueeze(-1), masked_row, carried)


class MaskGuess(LeftToRight, NetGuess):
    """``Guess`` for ``Mask``: the posterior at the net's x̂[0] (SUBS, Sahoo et al. 2024).

    :param destroy: the :class:`Mask` channel (its tables give the posterior).
    :param net: closure ``(x[t] [B, *shape], t [B] long) -> logits [B, *shape, V]``.
    :param one_pass: the net is causal without a time input and the destruction is the
        staircase hyperschedule, so :meth:`sequence_nll` scores every level in one call.
    """

    def __init__(self, destroy: nn.Module, net: Callable, one_pass: bool = False) -> None:
        super().__init__(destroy, net)
        self.one_pass = bool(one_pass) and bool(destroy.staircase)

    def sequence_nll(self, x0: Tensor) -> Tensor:
        """The exact negative ELBO of the staircase from one call of the causal net: ``[B]``.

        :param x0: data, long ``[B, *shape]``.
        """
        t = torch.full((x0.shape[0],), len(self.destroy.rate) - 1, device=x0.device)
        return causal_sequence_nll(self.logits(x0, t), x0)

    def log_probs(self, source: Tensor | None, t: Tensor) -> Tensor:
        """``[B, *shape, V + 1]``; see :meth:`Mask.posterior_log_probs`."""
        assert source is not None
        return self.destroy.posterior_log_probs(source, self.logits(source, t).log_softmax(-1), t)

    def sample(self, source: Tensor | None, t: Tensor, generator=None) -> Tensor:
        """Unmask each masked position with probability ``r_t`` (per position for a
        hyperschedule) to a value drawn from the net's softmax; unmasked positions are carried
        over. ``r_1 = 1``: nothing stays masked at x[0]. A deterministic schedule that unmasks
        the same number of positions at every level draws only those positions' values."""
        assert source is not None
        if self.destroy.reveal is not None:
            return self._reveal(source, t, generator)
        values = sample_categorical(self.logits(source, t).float(), generator)
        u = torch.rand(source.shape, generator=generator, device=source.device)
        unmask = (source == self.destroy.vocab) & (u < level_view(self.destroy.rate[t], source))
        return torch.where(unmask, values, source)

    def _reveal(self, source: Tensor, t: Tensor, generator) -> Tensor:
        flat = source.flatten(1)
        positions = self.destroy.reveal[t]  # [B, k]
        logits = self.logits(source, t).flatten(1, -2)  # [B, L, V]
        here = logits.gather(1, positions[..., None].expand(-1, -1, logits.shape[-1]))
        values = sample_categorical(here.float(), generator)  # [B, k]
        return flat.scatter(1, positions, values).reshape(source.shape)


class MashLast(Channel):
    """``x[t] = MashLast(x[t-1])``: mask the last unmasked position (deterministic).

    :param shape: the message's shape (``L`` = its number of positions = ``T``).
    :param vocab: ``V`` (``[MASK]`` is id ``V``).
    """

    stochastic = False

    def __init__(self, shape: tuple[int, ...], vocab: int) -> None:
        super().__init__()
        self.shape, self.vocab = tuple(shape), int(vocab)
        self.length = int(np.prod(shape)) if shape else 1
        self.register_buffer("positions", torch.arange(self.length))

    def sample(self, source: Tensor | None, t: Tensor, generator=None) -> Tensor:
        """:returns: ``source`` with its last unmasked position masked: ``[B, *shape]``."""
        assert source is not None
        flat = source.flatten(1)
        unmasked = flat != self.vocab
        last = torch.where(unmasked, self.positions, -1).amax(dim=1, keepdim=True)  # [B, 1]
        return torch.where(self.positions == last, self.vocab, flat).reshape(source.shape)

    def log_prob(self, value: Tensor, source: Tensor | None, t: Tensor) -> Tensor:
        """0 when ``value`` is MashLast(``source``), ``-inf`` otherwise: ``[B]``."""
        same = (value == self.sample(source, t)).flatten(1).all(dim=1)
        zero = torch.zeros(value.shape[0], device=value.device)
        return torch.where(same, zero, torch.full_like(zero, -torch.inf))

    def position(self, t: Tensor) -> Tensor:
        """The position masked by level ``t`` (and unmasked by generation at ``t``): ``L − t``."""
        return self.length - t

    def marginal(self, x0: Tensor, t: Tensor, generator=None) -> Tensor:
        """x[t] given x[0]: positions ``L − t`` onwards masked: ``[B, *shape]``."""
        flat = x0.flatten(1)
        hidden = self.positions >= self.position(t)[:, None]
        return torch.where(hidden, self.vocab, flat).reshape(x0.shape)


class MashLastGuess(LeftToRight, NetGuess):
    """``Guess`` for ``MashLast``: position ``L − t`` gets a value drawn from the net's softmax
    there; every other position is carried over (left-to-right generation).

    :param destroy: the :class:`MashLast` channel.
    :param net: closure ``(x[t] [B, *shape], t [B] long) -> logits [B, *shape, V]``.
    :param one_pass: the net is causal without a time input (see
        :func:`~dtg.channels.discrete.scores_every_position`), so :meth:`sequence_nll` can
        score every level in one call.
    """

    def __init__(self, destroy: nn.Module, net: Callable, one_pass: bool = False) -> None:
        super().__init__(destroy, net)
        self.one_pass = bool(one_pass)

    def sequence_nll(self, x0: Tensor) -> Tensor:
        """``Σ_i −log p̂(x0_i | x0_{<i})`` from one call of a causal net: the sum of every
        level's term, i.e. the exact negative ELBO of ``MashLast``: ``[B]`` nats.

        :param x0: data, long ``[B, *shape]``.
        """
        t = torch.full((x0.shape[0],), self.destroy.length, device=x0.device, dtype=torch.long)
        return causal_sequence_nll(self.logits(x0, t), x0)

    def log_probs(self, source: Tensor | None, t: Tensor) -> Tensor:
        """``[B, *shape, V + 1]``: one-hot on ``x[t]`` except the softmax at position ``L − t``."""
        assert source is not None
        flat = source.flatten(1)
        log_x0 = self.logits(source, t).flatten(1, -2).log_softmax(-1)
        fill = torch.cat([log_x0, torch.full_like(log_x0[..., :1], -torch.inf)], -1)
        carried = F.one_hot(flat, self.destroy.vocab + 1).to(fill.dtype)
        carried = torch.where(carried > 0, 0.0, -torch.inf)
        here = (self.destroy.positions == self.destroy.position(t)[:, None]).unsqueeze(-1)
        return torch.where(here, fill, carried).reshape(*source.shape, -1)

    def sample(self, source: Tensor | None, t: Tensor, generator=None) -> Tensor:
        """:returns: ``x[t]`` with position ``L − t`` filled: long ``[B, *shape]``."""
        assert source is not None
        flat = source.flatten(1)
        position = self.destroy.position(t)[:, None]  # [B, 1]
        logits = self.logits(source, t).flatten(1, -2)  # [B, L, V]
        here = logits.gather(1, position[..., None].expand(-1, 1, logits.shape[-1]))
        value = sample_categorical(here.squeeze(1).float(), generator)  # [B]
        return flat.scatter(1, position, value[:, None]).reshape(source.shape)

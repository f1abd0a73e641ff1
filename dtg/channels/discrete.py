"""Discrete channels over token messages ``token(V)[L…]``: the base class, starts, kernel.

Token messages are long tensors ``[B, *shape]`` with values ``0..V-1``; when a ``Mask`` or
``MashLast`` channel is used the extra id ``V`` is ``[MASK]``. A :class:`DiscreteChannel` is
an independent categorical per position: it implements :meth:`DiscreteChannel.log_probs`
(``[B, *shape, K]`` log-probabilities over ``K = V`` or ``V + 1`` values, ``-inf`` for the
impossible ones) and inherits ``sample`` and ``log_prob`` from it.

This module holds the starts (``= masked``, ``~ Categorical(logits = c)``) and the general
``Categorical(logits = …)`` generation kernel. The families live in :mod:`dtg.channels.mask`
(``Mask``, ``MashLast`` and their ``Guess``) and :mod:`dtg.channels.shuffle` (``Shuffle`` and its
``Guess``); :func:`dtg.channels.factory.build_discrete` picks the channel of each role.

References: Austin et al. 2021, Structured Denoising Diffusion Models in Discrete State-Spaces
(D3PM, arXiv 2107.03006); Sahoo et al. 2024, Simple and Effective Masked Diffusion Language
Models (MDLM, arXiv 2406.07524).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..marginals import discrete_alpha
from .base import Channel, sum_event

__all__ = [
    "DiscreteChannel",
    "NetGuess",
    "MaskedStart",
    "CategoricalStart",
    "CategoricalKernel",
    "sample_categorical",
    "causal_sequence_nll",
    "gather_log_prob",
    "net_closure",
    "scores_every_position",
]


def sample_categorical(log_probs: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """One draw per row of ``log_probs`` ``[…, K]`` (inverse CDF in float64): long ``[…]``.

    Values with probability 0 (``-inf``) are never drawn; rows need not be normalised.
    """
    probs = (log_probs.double() - log_probs.double().amax(-1, keepdim=True)).exp()
    cdf = probs.cumsum(-1)
    u = torch.rand((*cdf.shape[:-1], 1), generator=generator, device=cdf.device, dtype=cdf.dtype)
    index = torch.searchsorted(cdf, u * cdf[..., -1:], right=True)
    return index.squeeze(-1).clamp_max(cdf.shape[-1] - 1)


def gather_log_prob(log_probs: Tensor, value: Tensor) -> Tensor:
    """Sum over positions of ``log_probs[…, value]``: ``log_probs`` ``[B, *shape, K]``,
    ``value`` long ``[B, *shape]`` (ids ``≥ K`` have log-probability ``-inf``) → ``[B]``."""
    size = log_probs.shape[-1]
    inside = value < size
    picked = log_probs.gather(-1, value.clamp_max(size - 1).unsqueeze(-1)).squeeze(-1)
    picked = torch.where(inside, picked, torch.full_like(picked, -torch.inf))
    return sum_event(picked)


def causal_sequence_nll(logits: Tensor, x0: Tensor) -> Tensor:
    """``Σ_i −log p̂(x0_i | x0_{<i})`` from a causal net's logits on x[0] (output ``i`` reads
    inputs ``< i``): every level of a left-to-right (staircase) destruction in one call.

    :param logits: ``[B, *shape, V]``, the net's output on ``x0``. :param x0: long ``[B, *shape]``.
    :returns: ``[B]`` nats.
    """
    flat = logits.flatten(1, -2)  # [B, L, V]
    nll = F.cross_entropy(flat.transpose(1, 2), x0.flatten(1), reduction="none")  # [B, L]
    return nll.sum(1)


def level_view(values: Tensor, like: Tensor) -> Tensor:
    """Level parameters, ``[B]`` or per position ``[B, *shape]``, viewed to broadcast against
    ``like`` ``[B, *shape, …]``."""
    return values.reshape(values.shape + (1,) * (like.dim() - values.dim()))


class DiscreteChannel(Channel):
    """An independent categorical per position, given by :meth:`log_probs`."""

    def _register_keep(self, keep: np.ndarray, vocab: int) -> np.ndarray:
        """Store ``vocab``, the per-level ``keep`` (``nan`` → 1) and α_t = ∏ keep as float32
        buffers (Mask and Shuffle): ``[T + 1]``, or ``[T + 1, *shape]`` for a per-position keep
        (a hyperschedule); :returns: α as float64, the shape of ``keep``."""
        self.vocab = int(vocab)
        keep = np.nan_to_num(np.asarray(keep, dtype=np.float64), nan=1.0)
        alpha = discrete_alpha(keep)["alpha"]
        self.register_buffer("keep", torch.as_tensor(keep, dtype=torch.float32))
        self.register_buffer("alpha", torch.as_tensor(alpha, dtype=torch.float32))
        return alpha

    def log_probs(self, source: Tensor | None, t: Tensor) -> Tensor:
        """Log-probabilities of each position's value: ``[B, *shape, K]``."""
        raise NotImplementedError

    def sample(
        self, source: Tensor | None, t: Tensor, generator: torch.Generator | None = None
    ) -> Tensor:
        """:returns: long ``[B, *shape]``."""
        return sample_categorical(self.log_probs(source, t), generator)

    def log_prob(self, value: Tensor, source: Tensor | None, t: Tensor) -> Tensor:
        """:returns: ``[B]``, ``-inf`` for an impossible value."""
        return gather_log_prob(self.log_probs(source, t), value)


class NetGuess(DiscreteChannel):
    """A discrete ``Guess``: a destruction channel and the net that guesses x[0] against it.

    :param destroy: the destruction channel whose posterior the guess uses.
    :param net: closure ``(x[t] [B, *shape], t [B] long) -> logits [B, *shape, V]``.
    """

    def __init__(self, destroy: nn.Module, net: Callable[[Tensor, Tensor], Tensor]) -> None:
        super().__init__()
        self.destroy, self.net = destroy, net

    def logits(self, xt: Tensor, t: Tensor) -> Tensor:
        """The net's logits over x[0]: ``[B, *shape, V]``."""
        return self.net(xt, t)


def _expand_logits(value: Tensor, batch: int, shape: tuple[int, ...], vocab: int) -> Tensor:
    """Broadcast an evaluated ``logits`` expression to ``[B, *shape, V]``."""
    full = (batch, *shape, vocab)
    if value.dim() == 1 and value.shape[0] == batch:  # a per-example scalar
        value = value.reshape(batch, *([1] * (len(full) - 1)))
    return value.float().expand(full)


class MaskedStart(Channel):
    """``x[T] = masked``: every position is ``[MASK]`` (id ``V``); log-probability 0.

    :param shape: the message's shape; :param vocab: ``V``.
    """

    stochastic = False

    def __init__(self, shape: tuple[int, ...], vocab: int) -> None:
        super().__init__()
        self.shape, self.vocab = tuple(shape), int(vocab)

    def sample(self, source: Tensor | None, t: Tensor, generator=None) -> Tensor:
        """:returns: long ``[B, *shape]`` filled with ``V``."""
        return torch.full((t.shape[0], *self.shape), self.vocab, device=t.device, dtype=torch.long)

    def log_prob(self, value: Tensor, source: Tensor | None, t: Tensor) -> Tensor:
        """0 where every position is masked, ``-inf`` otherwise: ``[B]``."""
        masked = (value == self.vocab).flatten(1).all(dim=1)
        zero = torch.zeros(value.shape[0], device=value.device)
        return torch.where(masked, zero, torch.full_like(zero, -torch.inf))


class CategoricalStart(DiscreteChannel):
    """``x[T] ~ Categorical(logits = c)`` independently per position (uniform when ``c`` is a
    constant).

    :param logits: closure ``(None, t [B]) -> `` a scalar, ``[B]`` or ``[B, *shape, V]``.
    """

    def __init__(
        self, logits: Callable[[Tensor | None, Tensor], Tensor], shape: tuple[int, ...], vocab: int
    ) -> None:
        super().__init__()
        self.logits_fn, self.shape, self.vocab = logits, tuple(shape), int(vocab)

    def log_probs(self, source: Tensor | None, t: Tensor) -> Tensor:
        """:returns: ``[B, *shape, V]``."""
        value = _expand_logits(self.logits_fn(None, t), t.shape[0], self.shape, self.vocab)
        return value.log_softmax(-1)


class CategoricalKernel(DiscreteChannel):
    """``x[t-1] ~ Categorical(logits = f(x[t]))``: a written-out generation kernel.

    :param logits: closure ``(x[t] [B, *shape], t [B]) -> [B, *shape, V]`` (or a scalar).
    """

    def __init__(
        self, logits: Callable[[Tensor | None, Tensor], Tensor], shape: tuple[int, ...], vocab: int
    ) -> None:
        super().__init__()
        self.logits_fn, self.shape, self.vocab = logits, tuple(shape), int(vocab)

    def log_probs(self, source: Tensor | None, t: Tensor) -> Tensor:
        """:returns: ``[B, *shape, V]``."""
        value = _expand_logits(self.logits_fn(source, t), t.shape[0], self.shape, self.vocab)
        return value.log_softmax(-1)


def scores_every_position(model: Any, name: str) -> bool:
    """Whether net ``name`` is causal (output ``i`` reads inputs ``< i`` only) and takes no
    time: then one call on x[0] gives every ``MashLast`` level's prediction at once."""
    return bool(getattr(model.nets[name], "causal", False)) and not _takes_time(model, name)


def _takes_time(model: Any, name: str) -> bool:
    return any(s.kind == "time" for s in model.ir.nets[name].inputs)


def net_closure(model: Any, name: str) -> Callable[[Tensor, Tensor], Tensor]:
    """``(x[t] [B, *shape], t [B] long) -> logits [B, *shape, V]``: the net called as
    ``net(x[t], t / T)`` when it declares a ``time`` input, else ``net(x[t])``."""
    net = model.nets[name]
    timed = _takes_time(model, name)
    steps = float(model.ir.steps)

    def predict(xt: Tensor, t: Tensor) -> Tensor:
        return net(xt, t.float() / steps) if timed else net(xt)

    return predict

"""The channel protocol: the seam between kernels and objectives (DESIGN.md §4).

A channel is one kernel of the withholding graph, made executable. Every family implements
:meth:`Channel.sample` and :meth:`Channel.log_prob`; families that have them also offer the
closed-form marginal ``q(x[t] | x[0])`` and posterior ``q(x[t-1] | x[t], x[0])``. Objectives are
written against this protocol, so a new family makes every objective that fits it work.

Shapes: ``B`` is the batch; ``t`` is ``[B]`` (long levels) or a Python ``int``; messages are
``[B, *shape]``; log-probabilities are ``[B]`` (summed over the message's dimensions).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["Channel", "level_tensor", "sum_event"]


def level_tensor(t: int | Tensor, batch: int, device: torch.device) -> Tensor:
    """``t`` as a ``[B]`` long tensor."""
    if isinstance(t, Tensor):
        return t.to(device=device, dtype=torch.long).expand(batch) if t.dim() == 0 else t.long()
    return torch.full((batch,), int(t), device=device, dtype=torch.long)


def sum_event(value: Tensor) -> Tensor:
    """Sum a ``[B, …]`` tensor over everything but the batch: ``[B]``."""
    return value.flatten(1).sum(dim=1) if value.dim() > 1 else value


class Channel(nn.Module):
    """Base class of executable channels.

    :param stochastic: ``False`` for deterministic maps (their ``log_prob`` is 0 on their value).
    """

    stochastic: bool = True

    def sample(
        self, source: Tensor | None, t: Tensor, generator: torch.Generator | None = None
    ) -> Tensor:
        """Draw the target level given the source level at levels ``t`` (``[B]``)."""
        raise NotImplementedError

    def log_prob(self, value: Tensor, source: Tensor | None, t: Tensor) -> Tensor:
        """``log k(value | source)`` at levels ``t``: ``[B]``."""
        raise NotImplementedError

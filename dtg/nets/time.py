"""The sinusoidal embedding of a net's ``time`` input (improved-diffusion's ``timestep_embedding``).

Callers pass ``t / T`` in ``[0, 1]``; the value is multiplied by :data:`TIME_SCALE` first, so the
frequencies match improved-diffusion's integer timesteps, but any float works.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

__all__ = ["TIME_SCALE", "sinusoidal_embedding"]

TIME_SCALE = 1000.0
"""Times are multiplied by this before the sinusoidal embedding (t in [0, 1] -> [0, 1000])."""


def sinusoidal_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal timestep embedding.

    :param t: times of shape ``[B]``; multiplied by :data:`TIME_SCALE` first.
    :param dim: embedding size; ``[cos | sin]`` halves, zero-padded by one column if odd.
    :param max_period: the lowest frequency is ``1 / max_period``.
    :returns: tensor ``[B, dim]`` on ``t``'s device with ``t``'s (floating) dtype.
    """
    t = t if t.is_floating_point() else t.float()
    half = dim // 2
    k = torch.arange(half, device=t.device, dtype=t.dtype)
    freqs = torch.exp(-math.log(max_period) * k / half)
    args = (t * TIME_SCALE)[:, None] * freqs[None, :]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    return F.pad(emb, (0, 1)) if dim % 2 else emb

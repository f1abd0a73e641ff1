"""The ``unet`` architecture: the DDPM / improved-diffusion U-Net for ``real[C, H, W]`` images.

Residual blocks with a time embedding added between their two convolutions, group norm and SiLU,
a strided-convolution down path and a nearest-neighbour + convolution up path joined level by
level by skip connections (one per level; improved-diffusion keeps one per block), and optional multi-head self-attention at chosen levels and in the
middle. Shapes (the checker's, :mod:`dtg.nets.spec`): the image input ``real[C, H, W]`` with
H and W divisible by 2^(levels − 1), an optional ``time``, the output ``real[C', H, W]``.
The last convolution of every residual branch and the output convolution start at zero
(improved-diffusion's ``zero_module``), so an untrained net outputs 0.

References: Ho et al. 2020, Denoising Diffusion Probabilistic Models (arXiv 2006.11239),
Appendix B; Nichol & Dhariwal 2021, Improved Denoising Diffusion Probabilistic Models (arXiv
2102.09672), its ``unet.py``; Ronneberger et al. 2015, U-Net (arXiv 1505.04597).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from ..ir.space import Space, SpaceKind
from .spec import check_inputs
from .time import sinusoidal_embedding

__all__ = ["UNet"]


def _zero(module: nn.Module) -> nn.Module:
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


class ResBlock(nn.Module):
    """GN → SiLU → conv, + the time embedding's projection, GN → SiLU → dropout → conv (zero),
    plus the input (through a 1×1 convolution when the channels change).

    :param time_dim: the embedding's width, or 0 for a net without time.
    """

    def __init__(self, a: int, b: int, time_dim: int, groups: int, dropout: float) -> None:
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(groups, a), nn.Conv2d(a, b, 3, padding=1)
        self.time = nn.Linear(time_dim, b) if time_dim else None
        self.norm2, self.drop = nn.GroupNorm(groups, b), nn.Dropout(dropout)
        self.conv2 = _zero(nn.Conv2d(b, b, 3, padding=1))
        self.skip = nn.Conv2d(a, b, 1) if a != b else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None) -> torch.Tensor:
        """:param x: ``[B, a, H, W]``. :param emb: ``[B, time_dim]`` or ``None``.
        :returns: ``[B, b, H, W]``."""
        h = self.conv1(F.silu(self.norm1(x)))
        if self.time is not None and emb is not None:
            h = h + self.time(F.silu(emb))[:, :, None, None]
        h = self.conv2(self.drop(F.silu(self.norm2(h))))
        return self.skip(x) + h


class Attention(nn.Module):
    """Multi-head self-attention over the H·W positions, residual; the projection starts at 0."""

    def __init__(self, channels: int, heads: int, groups: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm = nn.GroupNorm(groups, channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = _zero(nn.Conv2d(channels, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """:param x: ``[B, C, H, W]``. :returns: the same shape."""
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, self.heads, c // self.heads, h * w).unbind(1)
        out = F.scaled_dot_product_attention(
            q.transpose(-1, -2), k.transpose(-1, -2), v.transpose(-1, -2)
        )
        return x + self.proj(out.transpose(-1, -2).reshape(b, c, h, w))


class UNet(nn.Module):
    """See the module docstring.

    :param cfg: the options, validated by :func:`~dtg.nets.spec.resolve_options`: ``channels``
        (base width c), ``mults`` (level l has c·mults[l] channels), ``blocks`` (residual blocks
        per level and direction), ``attention`` (the levels with self-attention), ``heads``,
        ``groups`` (group-norm groups), ``dropout``.
    :param inputs: the image ``real[C, H, W]`` and optionally ``time``.
    :param output: ``real[C', H, W]``.
    """

    def __init__(self, cfg: dict[str, Any], inputs: tuple[Space, ...], output: Space) -> None:
        super().__init__()
        self.inputs = inputs
        c, mults, blocks = cfg["channels"], cfg["mults"], cfg["blocks"]
        groups, heads, drop = cfg["groups"], cfg["heads"], cfg["dropout"]
        image = next(s for s in inputs if s.kind == SpaceKind.REAL)
        timed = any(s.kind == SpaceKind.TIME for s in inputs)
        self.base, time_dim = c, (4 * c if timed else 0)
        self.time_mlp = (
            nn.Sequential(nn.Linear(c, time_dim), nn.SiLU(), nn.Linear(time_dim, time_dim))
            if timed
            else None
        )
        self.stem = nn.Conv2d(image.shape[0], c, 3, padding=1)
        widths = [c * m for m in mults]
        self.down, self.up = nn.ModuleList(), nn.ModuleList()
        previous = c
        for level, width in enumerate(widths):
            stage = nn.ModuleList()
            for _ in range(blocks):
                stage.append(ResBlock(previous, width, time_dim, groups, drop))
                previous = width
                if level in cfg["attention"]:
                    stage.append(Attention(width, heads, groups))
            if level < len(widths) - 1:
                stage.append(nn.Conv2d(width, width, 3, stride=2, padding=1))
            self.down.append(stage)
        self.middle = nn.ModuleList([
            ResBlock(previous, previous, time_dim, groups, drop),
            Attention(previous, heads, groups),
            ResBlock(previous, previous, time_dim, groups, drop),
        ])  # fmt: skip
        for level in reversed(range(len(widths))):
            stage = nn.ModuleList()
            if level < len(widths) - 1:
                stage.append(nn.Conv2d(previous, previous, 3, padding=1))  # after ×2 nearest
            for block in range(blocks):
                width = widths[level]
                entering = previous + widths[level] if block == 0 else width
                stage.append(ResBlock(entering, width, time_dim, groups, drop))
                previous = width
                if level in cfg["attention"]:
                    stage.append(Attention(width, heads, groups))
            self.up.append(stage)
        self.out_norm = nn.GroupNorm(groups, previous)
        self.out = _zero(nn.Conv2d(previous, output.shape[0], 3, padding=1))

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        """:param args: the image ``[B, C, H, W]`` (and the time ``[B]``, in declared order).
        :returns: ``[B, C', H, W]``."""
        check_inputs(self.inputs, args)
        dtype = self.stem.weight.dtype
        emb, x = None, None
        for space, value in zip(self.inputs, args, strict=True):
            if space.kind == SpaceKind.TIME:
                emb = self.time_mlp(sinusoidal_embedding(value.to(dtype), self.base))
            else:
                x = value.to(dtype)
        h = self.stem(x)
        skips = []
        for stage in self.down:
            for layer in stage:
                if isinstance(layer, ResBlock):
                    h = layer(h, emb)
                elif isinstance(layer, Attention):
                    h = layer(h)
                else:  # the strided convolution: the level's output is its skip
                    skips.append(h)
                    h = layer(h)
        skips.append(h)
        h = self.middle[2](self.middle[1](self.middle[0](h, emb)), emb)
        for stage in self.up:
            joined = False
            for layer in stage:
                if isinstance(layer, ResBlock):
                    if not joined:
                        h, joined = torch.cat([h, skips.pop()], dim=1), True
                    h = layer(h, emb)
                elif isinstance(layer, Attention):
                    h = layer(h)
                else:  # up: nearest-neighbour ×2, then the convolution
                    h = layer(F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return self.out(F.silu(self.out_norm(h)))

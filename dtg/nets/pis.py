"""The ``pis`` architecture: the Path Integral Sampler's net, used by the published diffusion samplers.

A ``time`` input goes through random-phase Fourier features (``harmonics`` frequencies spaced
evenly in [0.1, 100], each with a learned phase; sin and cos) and a two-layer GELU MLP to a
``hidden``-wide embedding; the real inputs, flattened and concatenated, go through one linear
layer to the same width; the two embeddings are *added* and read by ``GELU → (Linear → GELU) ×
layers → Linear``. A net without real inputs (a time-only Langevin scale) reads the time
embedding alone. Unlike ``mlp``, whose time embedding is concatenated, the time here shifts
every feature before the first nonlinearity, as PIS and gfn-diffusion build it.

References:
    Zhang & Chen 2022, *Path Integral Sampler* (arXiv 2111.15141), Appendix (network);
    Sendera et al. 2024 (arXiv 2402.05098), whose gfn-diffusion code uses it for every sampler.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..ir.space import Space, SpaceKind
from .spec import check_inputs

__all__ = ["PIS"]

#: The Fourier features' frequency range (PIS's convention for times t/T in [0, 1]).
_FREQUENCIES = (0.1, 100.0)


class PIS(nn.Module):
    """Fourier time embedding plus linear state embedding, added, then a GELU MLP.

    :param cfg: the options, validated by :func:`~dtg.nets.spec.resolve_options`:
        ``hidden`` (width), ``harmonics``, ``layers``, ``zero_init``, ``out_bias``.
    :param inputs: the input spaces: reals (any shapes) and exactly one ``time``.
    :param output: the output space.
    """

    def __init__(self, cfg: dict[str, Any], inputs: tuple[Space, ...], output: Space) -> None:
        super().__init__()
        self.inputs, self.out_shape = inputs, output.shape
        width, harmonics = cfg["hidden"], cfg["harmonics"]
        state_size = sum(s.size for s in inputs if s.kind == SpaceKind.REAL)
        self.register_buffer("frequencies", torch.linspace(*_FREQUENCIES, harmonics))
        self.phase = nn.Parameter(torch.randn(harmonics))
        self.time = nn.Sequential(
            nn.Linear(2 * harmonics, width), nn.GELU(), nn.Linear(width, width)
        )
        self.state = nn.Linear(state_size, width) if state_size else None
        layers: list[nn.Module] = [nn.GELU(), nn.Linear(width, width), nn.GELU()]
        for _ in range(cfg["layers"] - 1):
            layers += [nn.Linear(width, width), nn.GELU()]
        last = nn.Linear(width, output.size)
        if cfg["zero_init"]:
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
        if cfg["out_bias"]:  # the initial output of a zero-initialised net (PIS: 0.01)
            nn.init.constant_(last.bias, cfg["out_bias"])
        self.joint = nn.Sequential(*layers, last)

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        """:param args: one ``[B, *space.shape]`` tensor per input (``time`` as t/T, ``[B]``).
        :returns: ``[B, *output.shape]``."""
        check_inputs(self.inputs, args)
        dtype = self.phase.dtype
        states, h = [], None
        for space, x in zip(self.inputs, args, strict=True):
            if space.kind == SpaceKind.TIME:
                angle = x.to(dtype)[:, None] * self.frequencies + self.phase
                h = self.time(torch.cat([angle.sin(), angle.cos()], dim=-1))
            else:
                states.append(x.to(dtype).reshape(x.shape[0], -1))
        if self.state is not None:
            h = h + self.state(torch.cat(states, dim=-1))
        y = self.joint(h)
        return y.reshape(y.shape[0], *self.out_shape)

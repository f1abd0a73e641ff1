"""The ``transformer`` architecture: a pre-norm encoder over a length-``L`` sequence."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ..ir.space import Space, SpaceKind
from .spec import check_inputs
from .time import sinusoidal_embedding

__all__ = ["Transformer"]


class Transformer(nn.Module):
    """Pre-norm transformer encoder over a length-``L`` sequence -> ``[B, L]`` or ``[B, L, F]``.

    Token inputs are embedded (``V + 1`` ids, ``[MASK]`` included), ``real[L, k]`` inputs mapped
    by a linear layer, and a ``time`` input embedded and added at every position.

    With ``causal = true`` the output at position ``i`` depends on the sequence inputs at
    positions ``< i`` only (and on the time): the inputs are shifted right by one behind a
    learned start vector and attention is masked to ``j ≤ i``, as in a GPT decoder. Such a net
    scores every position of an autoregressive (``MashLast``) model in one pass.

    :param cfg: the options, validated by :func:`~dtg.nets.spec.resolve_options`.
    :param inputs: the input spaces, in order.
    :param output: the output space ``real[L]`` or ``real[L, F]``.
    """

    def __init__(self, cfg: dict[str, Any], inputs: tuple[Space, ...], output: Space) -> None:
        super().__init__()
        w = cfg["width"]
        self.inputs, self.out_shape, self.width = inputs, output.shape, w
        self.causal = bool(cfg["causal"])
        length = output.shape[0]
        if self.causal:
            self.begin = nn.Parameter(torch.randn(w) * 0.02)
            # True above the diagonal = position i may not attend to j > i.
            above = torch.ones(length, length, dtype=torch.bool).triu(1)
            self.register_buffer("attend_mask", above, persistent=False)
        self.embeds = nn.ModuleList()
        for space in inputs:
            if space.kind == SpaceKind.TOKEN:
                self.embeds.append(nn.Embedding(space.vocab + 1, w))
            elif space.kind == SpaceKind.REAL:
                self.embeds.append(nn.Linear(math.prod(space.shape[1:]), w))
            else:
                self.embeds.append(nn.Sequential(nn.Linear(w, w), nn.SiLU(), nn.Linear(w, w)))
        self.pos = nn.Parameter(torch.randn(length, w) * 0.02)
        layer = nn.TransformerEncoderLayer(
            w,
            cfg["heads"],
            4 * w,
            float(cfg["dropout"]),
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, cfg["depth"], enable_nested_tensor=False)
        self.norm = nn.LayerNorm(w)
        self.head = nn.Linear(w, math.prod(output.shape[1:]))

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        """:param args: one ``[B, *space.shape]`` tensor per input.
        :returns: ``[B, *output.shape]``."""
        check_inputs(self.inputs, args)
        dtype = self.pos.dtype
        seq, timed = 0.0, 0.0
        for space, emb, x in zip(self.inputs, self.embeds, args, strict=True):
            if space.kind == SpaceKind.TOKEN:
                seq = seq + emb(x.long())
            elif space.kind == SpaceKind.REAL:
                seq = seq + emb(x.to(dtype).reshape(*x.shape[:2], -1))
            else:
                timed = timed + emb(sinusoidal_embedding(x.to(dtype), self.width))[:, None, :]
        if self.causal:  # position i reads the inputs at i - 1 (the start vector at 0)
            begin = self.begin.expand(seq.shape[0], 1, -1)
            seq = torch.cat([begin, seq[:, :-1]], dim=1)
            h = self.encoder(self.pos[None] + seq + timed, mask=self.attend_mask, is_causal=True)
        else:
            h = self.encoder(self.pos[None] + seq + timed)
        y = self.head(self.norm(h))
        return y.reshape(y.shape[0], *self.out_shape)

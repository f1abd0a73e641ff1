"""Left-to-right decoding of a causal transformer with a key/value cache.

A causal ``transformer`` without a time input gives, at position ``p``, logits that read the
tokens at positions ``< p`` only. Generating a left-to-right (staircase) model level by level
calls the whole net once per level — ``L`` full passes for ``L`` tokens. Here each level runs
the net on the one new position only, attending to the keys and values cached from the earlier
ones: the same numbers (up to float rounding; no dropout, so in evaluation mode only), at the
cost of about one full pass in all.

References: Vaswani et al. 2017 (arXiv 1706.03762); Pope et al. 2022, Efficiently Scaling
Transformer Inference (arXiv 2211.05102), §2 on the key/value cache.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..ir.space import SpaceKind
from .transformer import Transformer

__all__ = ["can_decode", "KVCache", "decode_left_to_right"]


def can_decode(net: nn.Module) -> bool:
    """Whether ``net`` is a causal transformer over one token input, without a time input, in
    evaluation mode (dropout off): :class:`KVCache` reproduces its outputs."""
    return (
        isinstance(net, Transformer)
        and net.causal
        and not net.training
        and len(net.inputs) == 1
        and net.inputs[0].kind == SpaceKind.TOKEN
        and len(net.inputs[0].shape) == 1
    )


class KVCache:
    """The cached keys and values of one batch being decoded by a causal ``Transformer``.

    :param net: a net for which :func:`can_decode` holds.
    :param batch: the number of sequences decoded together.
    """

    def __init__(self, net: nn.Module, batch: int) -> None:
        self.net, self.batch = net, batch
        self.keys: list[Tensor | None] = [None] * len(net.encoder.layers)
        self.values: list[Tensor | None] = [None] * len(net.encoder.layers)
        self.position = 0

    def next_logits(self, previous: Tensor | None) -> Tensor:
        """The net's output at the next position, given the token before it.

        :param previous: long ``[B]``, the token at position ``p - 1`` (``None`` at ``p = 0``,
            where the net reads its learned start vector).
        :returns: ``[B, *output.shape[1:]]`` (the logits at position ``p``); ``p`` advances.
        """
        net, p = self.net, self.position
        if previous is None:
            h = net.begin.expand(self.batch, 1, -1)
        else:
            h = net.embeds[0](previous.long())[:, None, :]
        h = net.pos[p][None, None, :] + h  # [B, 1, w]
        for index, layer in enumerate(net.encoder.layers):
            h = h + self._attend(layer, index, layer.norm1(h))
            h = h + layer.linear2(layer.activation(layer.linear1(layer.norm2(h))))
        self.position += 1
        out = net.head(net.norm(h))[:, 0]
        return out.reshape(out.shape[0], *net.out_shape[1:])

    def _attend(self, layer: nn.Module, index: int, x: Tensor) -> Tensor:
        attention = layer.self_attn
        heads = attention.num_heads
        q, k, v = F.linear(x, attention.in_proj_weight, attention.in_proj_bias).chunk(3, dim=-1)
        split = lambda y: y.reshape(y.shape[0], 1, heads, -1).transpose(1, 2)  # noqa: E731
        q, k, v = split(q), split(k), split(v)  # [B, H, 1, d]
        if self.keys[index] is not None:
            k = torch.cat([self.keys[index], k], dim=2)
            v = torch.cat([self.values[index], v], dim=2)
        self.keys[index], self.values[index] = k, v
        out = F.scaled_dot_product_attention(q, k, v)  # the new position sees every cached one
        out = out.transpose(1, 2).reshape(x.shape[0], 1, -1)
        return attention.out_proj(out)


def decode_left_to_right(
    net: nn.Module,
    batch: int,
    sample: Callable[[Tensor], Tensor],
    device: torch.device,
) -> Tensor:
    """Generate ``batch`` sequences position by position with the cache.

    :param net: a net for which :func:`can_decode` holds.
    :param sample: draws one value per row from logits ``[B, 1, V]``: long ``[B, 1]`` (the
        caller's categorical sampler, so that the random stream is the one level-by-level
        generation would use).
    :returns: long ``[B, L]``.
    """
    length = net.out_shape[0]
    cache = KVCache(net, batch)
    out = torch.empty(batch, length, dtype=torch.long, device=device)
    previous = None
    for position in range(length):
        value = sample(cache.next_logits(previous)[:, None, :])[:, 0]
        out[:, position] = value
        previous = value
    return out

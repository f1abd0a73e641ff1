"""The ``mlp`` architecture: every input flattened, one-hot or embedded, then dense layers."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from ..ir.space import Space, SpaceKind
from .spec import check_inputs, mlp_in_features
from .time import sinusoidal_embedding

__all__ = ["MLP"]

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "silu": nn.SiLU,
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
}


class MLP(nn.Module):
    """Flatten reals, one-hot tokens (``V + 1`` values, ``[MASK]`` included), embed times;
    concatenate; then ``Linear -> activation`` layers and a last ``Linear``.

    :param cfg: the options, validated by :func:`~dtg.nets.spec.resolve_options`.
    :param inputs: the input spaces, in order.
    :param output: the output space.
    """

    def __init__(self, cfg: dict[str, Any], inputs: tuple[Space, ...], output: Space) -> None:
        super().__init__()
        self.inputs, self.out_shape, self.time_dim = inputs, output.shape, cfg["time_dim"]
        sizes = [mlp_in_features(inputs, self.time_dim), *cfg["hidden"]]
        layers: list[nn.Module] = []
        for a, b in zip(sizes, sizes[1:], strict=False):
            layers += [nn.Linear(a, b), _ACTIVATIONS[cfg["activation"]]()]
        last = nn.Linear(sizes[-1], output.size)
        if cfg["zero_init"]:
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
        if cfg.get("out_bias"):  # the initial output of a zero-initialised net (PIS: 0.01)
            nn.init.constant_(last.bias, cfg["out_bias"])
        self.body = nn.Sequential(*layers, last)

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        """:param args: one ``[B, *space.shape]`` tensor per input.
        :returns: ``[B, *output.shape]``."""
        check_inputs(self.inputs, args)
        dtype = self.body[-1].weight.dtype
        feats = []
        for space, x in zip(self.inputs, args, strict=True):
            if space.kind == SpaceKind.TIME:
                feats.append(sinusoidal_embedding(x.to(dtype), self.time_dim))
            elif space.kind == SpaceKind.TOKEN:
                feats.append(F.one_hot(x.long(), space.vocab + 1).to(dtype).flatten(1))
            else:
                feats.append(x.to(dtype).reshape(x.shape[0], -1))
        y = self.body(torch.cat(feats, dim=-1))
        return y.reshape(y.shape[0], *self.out_shape)

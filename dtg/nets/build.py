""":func:`build_net`: the torch module a ``net`` declaration names.

The module's ``forward(*args)`` takes one tensor per declared input, in order, each with exactly
one leading batch dimension ``B``:

* ``real[*S]``   -> float tensor ``[B, *S]`` (a scalar ``real`` is ``[B]``);
* ``token(V)[*S]`` -> long tensor ``[B, *S]`` with values ``0..V``; id ``V`` is ``[MASK]``;
* ``time``       -> float tensor ``[B]``; callers pass ``t / T`` in ``[0, 1]``
  (see :mod:`dtg.nets.time`).

and returns a float tensor ``[B, *output.shape]``. Nothing here is tied to a device: move a
built net with ``.to(device)``; inputs are cast to the net's parameter dtype.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from ..ir.space import Space
from .mlp import MLP
from .spec import MAX_PARAMETERS, NetConfigError, count_parameters, resolve_options
from .transformer import Transformer
from .unet import UNet

__all__ = ["MODULES", "build_net"]

MODULES: dict[str, type[nn.Module]] = {"mlp": MLP, "transformer": Transformer, "unet": UNet}
"""The module class of each architecture of :data:`~dtg.nets.spec.ARCHITECTURES`."""


def build_net(
    arch: str, options: Mapping[str, Any], inputs: Sequence[Space], output: Space
) -> nn.Module:
    """Build the net a ``.dtg`` declaration names.

    :param arch: architecture name, one of :data:`~dtg.nets.spec.ARCHITECTURES`.
    :param options: keyword options from the declaration (missing ones take defaults).
    :param inputs: input spaces; ``forward`` takes one ``[B, *shape]`` tensor per input.
    :param output: output space (must be ``real``).
    :raises NetConfigError: unknown architecture/option, bad values, or more than
        :data:`~dtg.nets.spec.MAX_PARAMETERS` parameters (checked before allocating anything).
    :returns: a module mapping the inputs to a ``[B, *output.shape]`` float tensor.
    """
    inputs = tuple(inputs)
    n = count_parameters(arch, options, inputs, output)
    if n > MAX_PARAMETERS:
        raise NetConfigError(
            f"net {arch} would have {n:,} parameters, more than the limit of {MAX_PARAMETERS:,}",
            "use smaller sizes",
        )
    cfg = resolve_options(arch, options, inputs, output)
    return MODULES[arch](cfg, inputs, output)

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

import torch
from torch import nn

from ..ir.space import Space
from .mlp import MLP
from .pis import PIS
from .registry import registered_nets
from .spec import (
    MAX_PARAMETERS,
    NetConfigError,
    count_parameters,
    describe_spaces,
    resolve_options,
)
from .transformer import Transformer
from .unet import UNet

__all__ = ["MODULES", "build_net"]

MODULES: dict[str, type[nn.Module]] = {
    "mlp": MLP,
    "pis": PIS,
    "transformer": Transformer,
    "unet": UNet,
}
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
    factory = registered_nets().get(arch)
    if factory is not None:
        return _plugin_net(arch, factory, dict(options), inputs, output)
    n = count_parameters(arch, options, inputs, output)
    if n > MAX_PARAMETERS:
        raise NetConfigError(
            f"net {arch} would have {n:,} parameters, more than the limit of {MAX_PARAMETERS:,}",
            "use smaller sizes",
        )
    cfg = resolve_options(arch, options, inputs, output)
    return MODULES[arch](cfg, inputs, output)


#: What a user's factory or module may raise that is its own failure (not Ctrl-C).
_FAILURES = (Exception, SystemExit)


def _dummy(space: Space, batch: int, device: torch.device) -> torch.Tensor:
    """Zeros of the space; for tokens the last row holds the mask id ``V``, as nets get it."""
    if space.kind == "time":
        return torch.zeros(batch, device=device)
    if space.kind == "token":
        ids = torch.zeros((batch, *space.shape), dtype=torch.long, device=device)
        ids[-1] = int(space.vocab or 0)
        return ids
    return torch.zeros((batch, *space.shape), device=device)


def _plugin_net(
    arch: str, factory: Any, options: dict, inputs: tuple[Space, ...], output: Space
) -> nn.Module:
    """Build a registered net and check it on a batch of two zero inputs (see
    :mod:`dtg.nets.registry`).

    :raises NetConfigError: when the factory fails or returns no module, the module has too
        many parameters, fails on the dummy batch, or returns another shape than the declared.
    """
    try:
        module = factory(inputs, output, options)
    except _FAILURES as error:
        raise NetConfigError(f"the plug-in net '{arch}' failed to build: {_said(error)}") from None
    if not isinstance(module, nn.Module):
        raise NetConfigError(
            f"the plug-in net '{arch}' returned {type(module).__name__}, not a torch nn.Module"
        )
    n = sum(p.numel() for p in module.parameters())
    if n > MAX_PARAMETERS:
        raise NetConfigError(
            f"net {arch} has {n:,} parameters, more than the limit of {MAX_PARAMETERS:,}"
        )
    shown = describe_spaces(inputs)
    try:
        with torch.no_grad():
            was_training = module.training
            device = next(module.parameters(), torch.zeros(())).device  # where it was built
            result = module.eval()(*[_dummy(s, 2, device) for s in inputs])
            module.train(was_training)
    except _FAILURES as error:
        raise NetConfigError(
            f"the plug-in net '{arch}' failed on a batch of 2 zero inputs ({shown}): {_said(error)}"
        ) from None
    want = (2, *output.shape)
    got = tuple(result.shape) if isinstance(result, torch.Tensor) else None
    if got != want:
        said = f"shape {list(got)}" if got is not None else f"a {type(result).__name__}"
        raise NetConfigError(
            f"the plug-in net '{arch}' returns {said} for a batch of 2, but the declaration says "
            f"-> real{list(output.shape)}, i.e. {list(want)}"
        )
    return module


def _said(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__

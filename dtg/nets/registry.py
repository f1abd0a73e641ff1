"""The user's own nets: ``dtg.register_net(name, factory)`` (torch-free).

A ``.dtg`` file never runs Python; a net the built-in architectures cannot express (a U-Net of
diffusers, an encoder of your own) is a Python *factory* the user registers — in a script, or in
a file given with ``--plugin FILE.py`` — and the model names it like an architecture::

    @dtg.register_net("my_unet")
    def my_unet(inputs, output, options):      # the declared spaces and the call's options
        return MyUNet(channels=options.get("channels", 64))   # an nn.Module

    # .dtg:  net eps : (real[1, 28, 28], time) -> real[1, 28, 28] = my_unet(channels = 32)

The factory receives the declaration's input spaces (:class:`~dtg.ir.space.Space`, ``time``
included), its output space and its keyword options (numbers, bools, names, lists), and returns
an ``nn.Module`` whose ``forward`` takes one tensor per input, as the built-in nets do (each with a
leading batch dimension; ``time`` as t/T in [0, 1], tokens as long ids with ``V`` the mask id).
When the model is compiled, dtg builds it and calls it on a batch of two zero inputs: a module
that fails or returns another shape than ``[2, *output]`` is an error at the ``net``
declaration. The checker knows only the name (it cannot count the parameters before the factory
runs; the limit is applied when it does).
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from ..names import RESERVED_NAMES

__all__ = ["register_net", "unregister_net", "registered_nets", "NetRegistryError"]

NetFactory = Callable[..., Any]  # (inputs, output, options) -> nn.Module
_NETS: dict[str, NetFactory] = {}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_BUILT_IN = ("mlp", "pis", "transformer", "unet")


class NetRegistryError(ValueError):
    """A net factory that cannot be registered (a bad or taken name, not a callable)."""


def register_net(
    name: str, factory: NetFactory | None = None
) -> NetFactory | Callable[[NetFactory], NetFactory]:
    """Make ``name(…)`` usable as a net architecture; usable as a decorator.

    :param name: the name ``.dtg`` files use (an identifier, not a built-in name).
    :param factory: ``(inputs: tuple[Space, ...], output: Space, options: dict) -> nn.Module``.
    :returns: ``factory`` (or a decorator when it is omitted).
    :raises NetRegistryError: for a bad name or a non-callable.
    """
    if not isinstance(name, str) or not _NAME.match(name) or keyword.iskeyword(name):
        raise NetRegistryError(f"a net name must be an identifier, got {name!r}")
    if name in _BUILT_IN or name in RESERVED_NAMES:
        raise NetRegistryError(f"'{name}' is a built-in name of dtg; choose another name")

    def register(function: NetFactory) -> NetFactory:
        if not callable(function):
            raise NetRegistryError(f"register_net('{name}', …) needs a function")
        _NETS[name] = function
        return function

    return register(factory) if factory is not None else register


def unregister_net(name: str) -> None:
    """Forget a registered net (no error when it is not registered)."""
    _NETS.pop(name, None)


def registered_nets() -> Mapping[str, NetFactory]:
    """:returns: the registered net factories by name, read-only."""
    return MappingProxyType(_NETS)

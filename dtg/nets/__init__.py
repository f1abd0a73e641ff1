"""Neural-network architectures that a ``.dtg`` file can name in a ``net`` declaration.

A declaration such as ``net eps : (real[2], time) -> real[2] = mlp(hidden = [128, 128])`` has
two halves here:

* :mod:`dtg.nets.spec` (torch-free): the architectures and their options, validation, and the
  parameter count by formula — what the checker needs;
* :mod:`dtg.nets.build` (torch): :func:`build_net`, with the modules in :mod:`dtg.nets.mlp` and
  :mod:`dtg.nets.transformer` and the time embedding in :mod:`dtg.nets.time`.

Importing this package does not import torch: the spec names are imported eagerly, the torch
names (:func:`build_net`, :func:`sinusoidal_embedding`, :data:`TIME_SCALE`) on first access
(PEP 562 ``__getattr__``), so ``dtg check`` stays torch-free while ``from dtg.nets import
build_net`` keeps working.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..ir.space import Space
from .spec import ARCHITECTURES, MAX_PARAMETERS, NetConfigError, count_parameters

if TYPE_CHECKING:
    from .build import build_net
    from .time import TIME_SCALE, sinusoidal_embedding

__all__ = [
    "ARCHITECTURES",
    "MAX_PARAMETERS",
    "TIME_SCALE",
    "NetConfigError",
    "Space",
    "build_net",
    "count_parameters",
    "sinusoidal_embedding",
]

#: The torch-backed names, imported on first access.
_LAZY = frozenset({"build_net", "sinusoidal_embedding", "TIME_SCALE"})


def __getattr__(name: str) -> Any:
    """Import a torch-backed name on first use (PEP 562), keeping ``import dtg.nets`` light.

    :param name: the attribute asked for.
    :returns: its value.
    :raises AttributeError: for a name this package does not have.
    """
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    # torch is heavy: the modules behind these names load on first use, not on import dtg.nets
    from . import build, time

    value = getattr(build if name == "build_net" else time, name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})

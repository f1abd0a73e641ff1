"""Unnormalised target densities for diffusion samplers (Sendera et al. 2024, arXiv 2402.05098).

:mod:`dtg.targets.registry` (torch-free) names the built-in targets ``gmm25``, ``funnel`` and
``manywell`` with their dimensions: ``TARGETS[name].dim``, ``name in TARGETS``. Evaluating one,
``TARGETS[name].log_reward(x)``, imports the torch densities of :mod:`dtg.targets.densities`.
Importing this package does not import torch: the density functions and ``MANYWELL_LOG_Z``
are imported on first access (PEP 562 ``__getattr__``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .registry import TARGETS, Target, TargetError, get_target

if TYPE_CHECKING:
    from .densities import (
        MANYWELL_LOG_Z,
        funnel_log_reward,
        gmm25_log_reward,
        manywell_log_reward,
    )

__all__ = [
    "MANYWELL_LOG_Z",
    "TARGETS",
    "Target",
    "TargetError",
    "funnel_log_reward",
    "get_target",
    "gmm25_log_reward",
    "manywell_log_reward",
]

#: The torch-backed names, imported from :mod:`dtg.targets.densities` on first access.
_LAZY = frozenset(
    {"MANYWELL_LOG_Z", "funnel_log_reward", "gmm25_log_reward", "manywell_log_reward"}
)


def __getattr__(name: str) -> Any:
    """Import a torch-backed name on first use (PEP 562), keeping ``import dtg.targets`` light.

    :param name: the attribute asked for.
    :returns: its value.
    :raises AttributeError: for a name this package does not have.
    """
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    # torch is heavy: the densities load on first use, not on import dtg.targets
    from . import densities

    value = getattr(densities, name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})

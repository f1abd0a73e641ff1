"""The built-in sampler targets by name, without torch: what ``dtg check`` needs to know.

A reward statement may name a target (``reward logr(x) = gmm25(x)``); the checker needs its
name and dimension only. Each :class:`Target` here carries that metadata and what is known of
its normalisation (:attr:`~Target.log_z`, :attr:`~Target.modes`, torch-free, from
:mod:`dtg.targets.normalisers`); its :meth:`~Target.log_reward` and :meth:`~Target.sample`
import the torch densities of :mod:`dtg.targets.densities` on first use.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from ..errors import did_you_mean
from .normalisers import log_z_of, modes_of

if TYPE_CHECKING:
    from torch import Tensor

    from .densities import Density

__all__ = ["TARGETS", "Target", "TargetError", "get_target"]


class TargetError(KeyError):
    """An unknown target name (a :class:`KeyError` with a readable message and a hint).

    :param message: the user-facing message.
    :param hint: an optional suggestion ("did you mean ...").
    """

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if self.hint is None else f"{self.message} ({self.hint})"


@functools.cache
def _density(name: str) -> Density:
    # torch is heavy: the densities load when a target is first evaluated, not when a file is checked
    from .densities import DENSITIES

    return DENSITIES[name]


@dataclass(frozen=True)
class Target:
    """A target density for a diffusion sampler.

    :param name: the name used in ``.dtg`` files (``reward logr(x) = gmm25(x)``).
    :param dim: the dimension ``d`` of a point, ``real[d]``.
    :param description: a one-line description.
    """

    name: str
    dim: int
    description: str = ""

    def log_reward(self, x: Tensor) -> Tensor:
        """The log of the (possibly unnormalised) density.

        :param x: ``Tensor[..., d]``.
        :returns: ``Tensor[...]``, on ``x``'s device with ``x``'s dtype.
        :raises ValueError: when the last dimension is not ``d``.
        """
        return _density(self.name).log_reward(x)

    def sample(self, n: int, generator: Any = None, **options: Any) -> Tensor:
        """Exact samples.

        :param n: how many.
        :param generator: a ``torch.Generator`` (its device is the default device).
        :param options: ``device=`` and ``dtype=`` (default float32).
        :returns: ``Tensor[n, d]``.
        """
        return _density(self.name).sample(n, generator, **options)

    @property
    def log_z(self) -> float:
        """``log ∫ exp(log_reward(x)) dx`` (0 for the normalised targets; torch-free)."""
        return log_z_of(self.name)

    @property
    def modes(self) -> tuple[tuple[float, ...], ...]:
        """The modes the target declares (``gmm25``: its 25 means; the others: none)."""
        return modes_of(self.name)[0]

    @property
    def mode_radius(self) -> float | None:
        """How near a sample must come to a mode to cover it (``None`` without modes)."""
        return modes_of(self.name)[1]


TARGETS: Mapping[str, Target] = MappingProxyType(
    {
        target.name: target
        for target in (
            Target("gmm25", 2, "mixture of 25 Gaussians on {-10,-5,0,5,10}^2, variance 0.3"),
            Target("funnel", 10, "10-D funnel: x0 ~ N(0, 9), x1..x9 | x0 ~ N(0, exp(x0))"),
            Target("manywell", 32, "32-D many-well: 16 copies of exp(-a^4 + 6a^2 + 0.5a - 0.5b^2)"),
        )
    }
)
"""The built-in targets by name (read-only)."""


def get_target(name: str) -> Target:
    """Look up a built-in target.

    :param name: the target's name.
    :returns: the :class:`Target`.
    :raises TargetError: for an unknown name, with a "did you mean" hint where one is close.
    """
    try:
        return TARGETS[name]
    except KeyError:
        raise TargetError(
            f"unknown target {name!r}; the built-in targets are {', '.join(TARGETS)}",
            did_you_mean(name, TARGETS, n=1),
        ) from None

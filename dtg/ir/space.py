"""The one space type of dtg: messages, data, net inputs and outputs all have a :class:`Space`.

A space is ``real[d…]``, ``token(V)[L…]`` (``[MASK]`` is the extra id ``V``) or ``time`` (a
net's level input). Scalars have ``shape == ()``. The IR, the data sources and the nets share
this one type; it is plain data and imports nothing heavy.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

__all__ = ["Space", "SpaceKind"]


class SpaceKind(enum.StrEnum):
    """What a space holds. A :class:`~enum.StrEnum`, so ``space.kind == "real"`` reads naturally."""

    REAL = "real"
    TOKEN = "token"
    TIME = "time"


@dataclass(frozen=True)
class Space:
    """The space of a message, a data point, a value, or a net's input or output.

    :param kind: ``"real"``, ``"token"`` or ``"time"`` (a :class:`SpaceKind`).
    :param shape: the per-example dimensions, ``()`` for scalars and time.
    :param vocab: the number of token values ``V`` (tokens only).
    """

    kind: SpaceKind
    shape: tuple[int, ...] = ()
    vocab: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", SpaceKind(self.kind))
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))

    def __str__(self) -> str:
        dims = f"[{', '.join(map(str, self.shape))}]" if self.shape else ""
        if self.kind == SpaceKind.TOKEN:
            return f"token({self.vocab}){dims}"
        return f"real{dims}" if self.kind == SpaceKind.REAL else str(self.kind)

    @property
    def size(self) -> int:
        """The number of scalar entries of one value (1 for scalars)."""
        return math.prod(self.shape) if self.shape else 1

    @staticmethod
    def scalar() -> Space:
        return Space(SpaceKind.REAL, ())

    @staticmethod
    def time() -> Space:
        return Space(SpaceKind.TIME, ())

"""Which :class:`~dtg.ir.space.Space` values a data variable may have.

Data are ``real[d…]`` or ``token(V)[L…]`` with positive dimensions; ``time`` is a net input,
never data. The IR's one :class:`~dtg.ir.space.Space` type accepts all three kinds, so the data
package checks its narrower rule here, once, with a :class:`DataError`.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..ir.space import Space, SpaceKind
from .errors import DataError

__all__ = ["DataSpace", "check_data_space"]


def check_data_space(space: Space) -> Space:
    """Check that ``space`` can be the space of a data variable.

    :param space: the declared space.
    :returns: ``space`` itself, so that calls can be chained.
    :raises DataError: for a ``time`` space, a dimension below 1, a token space without a
        positive vocabulary, or a real space with one.
    """
    if space.kind == SpaceKind.TIME:
        raise DataError("data cannot have the space 'time'", "declare real[d] or token(V)[L]")
    if any(dim < 1 for dim in space.shape):
        raise DataError(f"the data's dimensions must be positive, got {space}")
    if space.kind == SpaceKind.TOKEN:
        if space.vocab is None or space.vocab < 1:
            raise DataError(
                f"token data needs a positive number of token values V, got {space.vocab!r}",
                "declare token(V)[L], e.g. token(17)[64]",
            )
    elif space.vocab is not None:
        raise DataError(f"real data has no vocabulary, got vocab = {space.vocab!r}")
    return space


def DataSpace(kind: str, shape: Sequence[int], vocab: int | None = None) -> Space:  # noqa: N802 - the old class name, kept for callers not yet moved to Space
    """Deprecated: build a checked data :class:`~dtg.ir.space.Space` (use ``Space`` and
    :func:`check_data_space`).

    :param kind: ``"real"`` or ``"token"``.
    :param shape: the shape of one data point, e.g. ``(2,)`` or ``(8, 8)``.
    :param vocab: the vocabulary size V for ``token`` spaces, otherwise ``None``.
    :returns: the space.
    :raises DataError: for a kind other than real or token, or a space :func:`check_data_space`
        refuses.
    """
    try:
        space = Space(SpaceKind(kind), tuple(int(dim) for dim in shape), vocab)
    except (TypeError, ValueError):
        raise DataError(
            f"a data space is real[d…] or token(V)[L…], got kind {kind!r} and shape {shape!r}"
        ) from None
    return check_data_space(space)

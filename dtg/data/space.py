"""Which :class:`~dtg.ir.space.Space` values a data variable may have.

Data are ``real[d…]`` or ``token(V)[L…]`` with positive dimensions; ``time`` is a net input,
never data. The IR's one :class:`~dtg.ir.space.Space` type accepts all three kinds, so the data
package checks its narrower rule here, once, with a :class:`DataError`.
"""

from __future__ import annotations

from ..ir.space import Space, SpaceKind
from .errors import DataError

__all__ = ["check_data_space"]


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

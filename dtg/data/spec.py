"""Binding a data source call into the IR's typed value, :class:`~dtg.ir.model.DataSourceSpec`.

``data x : real[2] ~ moons(noise = 0.1)`` becomes ``DataSourceSpec("moons", {"noise": 0.1,
"n": 20000}, span)``: the source's name and its options bound to names (positional arguments
placed, defaults filled in) and validated against the declared space. The class lives in the IR
(one definition); this module makes one from a call's values. The runtime loads from it
(:func:`dtg.runtime.data_source.load_source_spec`) without reading the syntax again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..errors import Span
from ..ir.model import DataSourceSpec
from ..ir.space import Space
from .registry import bind_options, check_source

__all__ = ["DataSourceSpec", "bind_source"]


def bind_source(
    name: str,
    args: Sequence[object],
    kwargs: Mapping[str, object],
    space: Space,
    span: Span | None = None,
) -> DataSourceSpec:
    """Bind a source call's arguments and validate them against the declared space.

    The spec keeps the options as :func:`~dtg.data.registry.bind_options` returns them, not
    normalised: loading normalises them once, exactly as loading from the call did.

    :param name: the source's name.
    :param args: the positional argument values.
    :param kwargs: the keyword argument values.
    :param space: the declared space of the data.
    :param span: where the call is written, for located errors when loading fails.
    :returns: the :class:`~dtg.ir.model.DataSourceSpec`.
    :raises DataError: for an unknown source or option, a bad value, a space data cannot have,
        or a space the source does not give.
    """
    options = bind_options(name, args, kwargs)
    check_source(name, options, space)
    return DataSourceSpec(name, dict(options), span)

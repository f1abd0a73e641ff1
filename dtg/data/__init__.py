"""Built-in data sources for ``data`` statements.

A ``.dtg`` line such as ``data x : real[2] ~ moons(noise = 0.05)`` names a *source* (``moons``),
its options, and the declared *space* (``real[2]``). :func:`load_source` turns these into a
:class:`Dataset` with

- ``train``: ``Tensor[N_train, *shape]`` and ``test``: ``Tensor[N_test, *shape]``; float32 for
  ``real`` spaces, int64 in ``0..V-1`` for ``token(V)`` spaces;
- ``meta``: a dict with at least ``source``, ``options``, ``seed``, ``n_train``, ``n_test``.

The modules, one concept each:

- :mod:`~dtg.data.registry`: :data:`SOURCES`, :func:`bind_options`, :func:`check_source`;
- :mod:`~dtg.data.space`: :func:`check_data_space` (which spaces data may have);
- :mod:`~dtg.data.spec`: :class:`DataSourceSpec`, a bound source call as a typed value;
- :mod:`~dtg.data.toys`, :mod:`~dtg.data.digits`, :mod:`~dtg.data.files` (with
  :mod:`~dtg.data.readers`): each source's option check and numpy loader;
- :mod:`~dtg.data.dequantize`: the ``dequantize`` option every source takes (uniform noise over
  the grid cells of quantised real data) and :func:`~dtg.data.dequantize.data_bits_per_dim`;
- :mod:`~dtg.data.dataset`: :class:`Dataset` and :func:`load_source`, the only torch module.

Importing the package does not import torch: ``Dataset`` and ``load_source`` are loaded on
first use (PEP 562), so the checker validates sources without it. Every problem with a source
or its data raises :class:`DataError`, whose message names the file and, where relevant, the
first offending row.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import DataError
from .registry import REQUIRED, SOURCES, SourceSpec, bind_options, check_source, source_options
from .space import check_data_space
from .spec import DataSourceSpec, bind_source

if TYPE_CHECKING:
    from .dataset import Dataset, load_source

__all__ = [
    "REQUIRED",
    "SOURCES",
    "DataError",
    "DataSourceSpec",
    "Dataset",
    "SourceSpec",
    "bind_options",
    "bind_source",
    "check_data_space",
    "check_source",
    "load_source",
    "source_options",
]

#: Names of :mod:`dtg.data.dataset`, loaded on first use because that module imports torch.
_TORCH_NAMES = ("Dataset", "load_source")


def __getattr__(name: str) -> Any:
    """Load the torch-using names on first use (PEP 562).

    :param name: the attribute asked for.
    :returns: the attribute.
    :raises AttributeError: for a name the package does not have.
    """
    if name in _TORCH_NAMES:
        from . import dataset  # heavy: imports torch, which checking a model must not

        globals().update({torch_name: getattr(dataset, torch_name) for torch_name in _TORCH_NAMES})
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

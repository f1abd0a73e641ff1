"""What a source's loader returns: train and test rows as numpy arrays, before any torch.

Every loader (toys, digits, files) produces :class:`Rows`; :func:`dtg.data.load_source` turns
them into a torch :class:`~dtg.data.dataset.Dataset`. Keeping the loaders on numpy keeps the
data package importable without torch (the checker validates sources without loading them).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..ir.space import Space

__all__ = ["Loader", "OptionCheck", "Rows"]


@dataclass
class Rows:
    """The loaded data of one source, split into train and test.

    :param train: ``array[N_train, *space.shape]`` (float32 for real, int64 for token), owning
        its memory.
    :param test: ``array[N_test, *space.shape]``, same dtype.
    :param meta: source-specific extras: numpy arrays (labels, row indices) or plain values.
    """

    train: np.ndarray
    test: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)


#: ``load(options, space, seed, base_dir)``: the complete, checked options, the declared space,
#: the seed of the generator and of the train/test split, and the folder relative paths start in.
Loader = Callable[[Mapping[str, Any], Space, int, Path | None], Rows]

#: ``check(options, space)``: normalise the bound options in place and check the declared space.
OptionCheck = Callable[[dict[str, Any], Space], None]

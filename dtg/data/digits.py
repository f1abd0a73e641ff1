"""scikit-learn's 8x8 handwritten digits (1797 images, shipped with scikit-learn).

``real[64]`` (or ``real[8, 8]``): pixels 0..16 scaled to [-1, 1], a grid of step
:data:`REAL_STEP` = 1/8 (``dequantize = true`` spreads each value over its cell); ``token(V)[64]`` (or
``[8, 8]``): pixels quantised to V levels by ``round(p * (V - 1) / 16)`` (V = 17 is the
identity). Split 80/20 by the seed; labels in ``meta["labels_train"]`` / ``meta["labels_test"]``
(int64) and the original image indices in ``meta["index_train"]`` / ``meta["index_test"]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..ir.space import Space, SpaceKind
from .errors import DataError
from .rows import Rows

__all__ = ["REAL_STEP", "check_digits", "load_digits"]

#: The grid step of the ``real`` pixels: grey levels ``p = 0 … 16`` become ``p/8 − 1``.
REAL_STEP = 1.0 / 8.0


def check_digits(options: dict[str, Any], space: Space) -> None:
    """Normalise ``classes`` (a digit or a list of distinct digits, sorted) and check the space.

    :param options: ``classes`` (``None`` for all ten).
    :param space: the declared space: 64 pixels, real or at least 2 token levels.
    :raises DataError: for bad classes or a space that cannot hold an image.
    """
    classes = options["classes"]
    if classes is not None:
        if isinstance(classes, (int, float)) and not isinstance(classes, bool):
            classes = [classes]
        if not isinstance(classes, (list, tuple)) or not classes:
            raise DataError(
                f"digits: option classes must be a non-empty list of digits, got {classes!r}"
            )
        digits: list[int] = []
        for c in classes:
            if (
                isinstance(c, bool)
                or not isinstance(c, (int, float))
                or c != int(c)
                or not 0 <= c <= 9
            ):
                raise DataError(f"digits: option classes must list digits 0..9, got {c!r}")
            if int(c) in digits:
                raise DataError(f"digits: option classes lists {int(c)} twice")
            digits.append(int(c))
        options["classes"] = sorted(digits)
    if space.shape not in ((64,), (8, 8), (1, 8, 8)):
        raise DataError(
            f"digits() gives 64 pixels per image, but the data is declared {space}",
            "declare the data as real[64] or token(17)[64] (or [8, 8]; real[1, 8, 8] as an image)",
        )
    if space.kind == SpaceKind.TOKEN and (space.vocab or 0) < 2:
        raise DataError(
            f"digits() needs at least 2 token levels, but the data is declared {space}",
            "token(17)[64] keeps all 17 grey levels",
        )


def load_digits(options: Mapping[str, Any], space: Space, seed: int, base_dir: Path | None) -> Rows:
    """The digit images of the chosen classes, split 80/20 by the seed (indices kept sorted).

    :param options: the checked options (``classes``).
    :param space: the declared space (real, or token with V levels).
    :param seed: seeds the split.
    :param base_dir: unused.
    :returns: the rows, with labels and image indices in ``meta``.
    :raises DataError: when scikit-learn is not installed.
    """
    try:
        from sklearn.datasets import load_digits as sklearn_digits  # heavy: only when loading
    except ImportError:
        raise DataError(
            "digits() needs scikit-learn, which is not installed", "pip install scikit-learn"
        ) from None
    bunch = sklearn_digits()
    images = np.asarray(bunch.data, dtype=np.float64)  # [1797, 64], values 0..16
    labels = np.asarray(bunch.target, dtype=np.int64)
    index = np.arange(len(labels))
    if options["classes"] is not None:
        index = index[np.isin(labels, options["classes"])]
    rng = np.random.default_rng(seed)
    index = index[rng.permutation(len(index))]
    n_test = max(1, round(0.2 * len(index)))
    idx_test, idx_train = np.sort(index[:n_test]), np.sort(index[n_test:])
    if space.kind == SpaceKind.REAL:
        values: np.ndarray = (images / 8.0 - 1.0).astype(np.float32)
    else:
        levels = int(space.vocab or 0)
        values = np.rint(images * (levels - 1) / 16.0).astype(np.int64)
    values = values.reshape(-1, *space.shape)
    meta = {
        "labels_train": labels[idx_train],
        "labels_test": labels[idx_test],
        "index_train": idx_train,
        "index_test": idx_test,
    }
    return Rows(values[idx_train], values[idx_test], meta)

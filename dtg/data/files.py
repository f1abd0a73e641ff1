"""The ``file(path, key=None)`` source: rows of an array in a data file, checked against the space.

``.npy``, ``.npz`` (the single array, or ``key``), ``.csv`` (numeric, a non-numeric header row
is skipped; a row may be flattened to the declared shape) or ``.pt`` (a tensor, or a dict of
tensors with ``key``; loaded with ``weights_only=True``, never unpickled). The first axis indexes
rows; each row must have the declared shape (8-bit ``uint8`` arrays declared as
``real[C, H, W]`` images are scaled from 0 … 255 to [−1, 1], as ``images()`` scales pictures).
``path`` is relative to the ``.dtg`` file's folder; it must name a regular file (a link to one is followed): a folder, a device, a named pipe or a
socket is refused by its kind, without opening it.
10% of the rows (at least one) are held out as test, chosen by the seed.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import kind_of
from ..ir.space import Space, SpaceKind
from .errors import DataError
from .readers import READERS, first_line, read_array
from .rows import Rows

__all__ = ["check_file", "load_file", "read_rows"]


def check_file(options: dict[str, Any], space: Space) -> None:
    """Check ``path`` (a file name) and ``key`` (a name or ``None``); the file itself is checked
    on loading.

    :param options: ``path`` and ``key``.
    :param space: the declared space (any data space).
    :raises DataError: for a path or key that is not text.
    """
    path = options["path"]
    if not isinstance(path, (str, Path)) or not str(path):
        raise DataError(f"file: option path must be a file name in quotes, got {path!r}")
    key = options["key"]
    if key is not None and not isinstance(key, str):
        raise DataError(f"file: option key must be a name in quotes, got {key!r}")


def _resolve(raw: str, base_dir: Path | None) -> Path:
    path = Path(raw).expanduser()
    if not path.is_absolute():
        path = (base_dir if base_dir is not None else Path.cwd()) / path
    try:
        status = path.stat()  # never open(): opening a named pipe waits for a writer
    except FileNotFoundError:
        if path.is_symlink():
            raise DataError(
                f"{raw}: is a symbolic link to {os.readlink(path)}, which does not exist"
            ) from None
        raise DataError(f"{raw}: no such file (looked for {path.absolute()})") from None
    except OSError as e:
        raise DataError(f"{raw}: cannot read: {first_line(e)}") from None
    kind = kind_of(status.st_mode)
    if kind is not None:
        raise DataError(
            f"{raw}: is {kind}, not a data file",
            "a data source reads a regular .npy, .npz, .csv or .pt file",
        )
    suffix = path.suffix.lower()
    if suffix not in READERS and suffix != ".csv":
        raise DataError(
            f"{raw}: unsupported file type {suffix or '(no extension)'!r}",
            "use a .npy, .npz, .csv or .pt file",
        )
    if status.st_size == 0:
        raise DataError(f"{raw}: the file is empty")
    return path


def _row_name(i: int, line_nos: list[int] | None) -> str:
    return f"line {line_nos[i]}" if line_nos is not None else f"row {i} (counting from 0)"


def _rows_of_shape(
    arr: np.ndarray, space: Space, shown: str, line_nos: list[int] | None
) -> np.ndarray:
    """The numeric array with rows of ``space.shape`` (a column or a flat .csv row is reshaped)."""
    if arr.dtype.kind == "c":
        raise DataError(f"{shown}: holds complex numbers; data must be real")
    if arr.dtype.kind not in "biuf":
        raise DataError(f"{shown}: holds {arr.dtype} values, not numbers")
    if arr.ndim == 0:
        raise DataError(f"{shown}: holds a single number, not rows of data")
    if arr.shape[0] == 0:
        raise DataError(f"{shown}: holds no rows (array shape {tuple(arr.shape)})")
    row_shape = tuple(arr.shape[1:])
    want = space.shape
    if row_shape != want:
        if row_shape == () and want == (1,):
            arr = arr.reshape(-1, 1)
        elif line_nos is not None and row_shape == (math.prod(want),):
            arr = arr.reshape(-1, *want)
        else:
            found = "single numbers" if row_shape == () else f"shape {list(row_shape)}"
            raise DataError(
                f"{shown}: the data is declared {space}, so each row should have shape "
                f"{list(want)}, but the file's rows have {found} "
                f"(array shape {tuple(arr.shape)})",
                "the first axis indexes rows; change the declared space or the file",
            )
    return arr


def _real_values(flat: np.ndarray, shown: str, line_nos: list[int] | None) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):
        values = flat.astype(np.float32)  # values beyond float32 become inf: reported below
    bad = ~np.isfinite(values).all(axis=1)
    if bad.any():
        i = int(np.argmax(bad))
        what = "NaN" if np.isnan(values[i]).any() else "an infinite value"
        extra = " (or a value too large for float32)" if what != "NaN" else ""
        raise DataError(f"{shown}: {_row_name(i, line_nos)} contains {what}{extra}")
    return values


def _token_values(
    flat: np.ndarray, space: Space, shown: str, line_nos: list[int] | None
) -> np.ndarray:
    v = int(space.vocab or 0)
    if flat.dtype.kind == "f":
        finite = np.isfinite(flat)
        integral = finite & (flat == np.round(np.where(finite, flat, 0.0)))
        bad_int = ~integral.all(axis=1)
        if bad_int.any():
            i = int(np.argmax(bad_int))
            j = int(np.argmax(~integral[i]))
            raise DataError(
                f"{shown}: {_row_name(i, line_nos)} has the non-integer value "
                f"{flat[i, j].item()!r}; token data must be whole numbers 0..{v - 1}"
            )
    ints = flat.astype(np.float64) if flat.dtype.kind == "f" else flat
    out = (ints < 0) | (ints >= v)
    bad_range = out.any(axis=1)
    if bad_range.any():
        i = int(np.argmax(bad_range))
        j = int(np.argmax(out[i]))
        raise DataError(
            f"{shown}: {_row_name(i, line_nos)} has the token {flat[i, j].item()!r}, "
            f"outside 0..{v - 1} for the declared {space}"
        )
    return flat.astype(np.int64)


def read_rows(path: str | Path, space: Space, key: str | None = None) -> np.ndarray:
    """Every row of a data file, checked against ``space`` (no split): what ``dtg score`` reads.

    :returns: ``[N, *space.shape]`` (float for real spaces, int64 for tokens).
    :raises DataError: naming the file and the first offending row for any problem.
    """
    rows = _checked_rows(str(path), key, space, None)[0]
    if rows.shape[0] == 0:
        raise DataError(f"{path}: holds no rows")
    return rows


def _checked_rows(
    shown: str, key: str | None, space: Space, base_dir: Path | None
) -> tuple[np.ndarray, Path]:
    path = _resolve(shown, base_dir)
    if key is not None and path.suffix.lower() not in (".npz", ".pt", ".pth"):
        raise DataError(f"{shown}: option key applies only to .npz and .pt files")
    arr, line_nos = read_array(path, shown, key)
    arr = _rows_of_shape(np.asarray(arr), space, shown, line_nos)
    n = arr.shape[0]
    flat = arr.reshape(n, -1)
    if space.kind == SpaceKind.REAL and arr.dtype == np.uint8 and len(space.shape) == 3:
        values = (flat / 127.5 - 1.0).astype(np.float32)  # 8-bit images [C, H, W] to [−1, 1]
    elif space.kind == SpaceKind.REAL:
        values = _real_values(flat, shown, line_nos)
    else:
        values = _token_values(flat, space, shown, line_nos)
    return np.ascontiguousarray(values.reshape(n, *space.shape)), path


def load_file(options: Mapping[str, Any], space: Space, seed: int, base_dir: Path | None) -> Rows:
    """Read, check and split a data file.

    :param options: the checked options (``path``, ``key``).
    :param space: the declared space; every row must have its shape and values.
    :param seed: chooses the held-out rows (kept in file order, as are the training rows).
    :param base_dir: the folder a relative ``path`` starts in (the working directory if ``None``).
    :returns: the rows, with the resolved ``path`` and the row indices in ``meta``.
    :raises DataError: naming the file and the first offending row for any problem.
    """
    data, path = _checked_rows(str(options["path"]), options["key"], space, base_dir)
    n = data.shape[0]
    if n < 2:
        raise DataError(
            f"{options['path']}: holds only {n} row; at least 2 are needed (one is held out as test)"
        )
    perm = np.random.default_rng(seed).permutation(n)
    n_test = max(1, n // 10)
    idx_test, idx_train = np.sort(perm[:n_test]), np.sort(perm[n_test:])
    meta = {"path": str(path), "index_train": idx_train, "index_test": idx_test}
    return Rows(data[idx_train], data[idx_test], meta)

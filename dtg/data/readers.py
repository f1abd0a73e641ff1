"""Readers of data files into numpy arrays: ``.npy``, ``.npz``, ``.csv`` and ``.pt``/``.pth``.

None of them ever unpickles: ``.npy``/``.npz`` are read with ``allow_pickle=False`` and ``.pt``
with ``torch.load(weights_only=True)``. Every failure is a :class:`DataError` naming the file;
the checks of the array against the declared space are in :mod:`dtg.data.files`.
"""

from __future__ import annotations

import csv
import io
import pickle  # only for pickle.UnpicklingError: dtg never unpickles
import warnings
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from ..errors import did_you_mean
from .errors import DataError

__all__ = ["READERS", "first_line", "read_array"]


def first_line(error: BaseException) -> str:
    """:returns: the first line of an exception's message (its type name when it has none)."""
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def _pick_key(shown: str, keys: list[str], key: str | None, what: str) -> str:
    if key is not None:
        if key not in keys:
            raise DataError(
                f"{shown}: no array named {key!r}; it holds {', '.join(map(repr, keys)) or 'none'}",
                did_you_mean(key, keys),
            )
        return key
    if len(keys) == 1:
        return keys[0]
    if not keys:
        raise DataError(f"{shown}: the {what} holds no arrays")
    raise DataError(
        f"{shown}: the {what} holds several arrays ({', '.join(map(repr, keys))}); "
        "say which one to use",
        f'file("{shown}", key = "{keys[0]}")',
    )


def _read_npy(path: Path, shown: str, key: str | None) -> np.ndarray:
    with open(path, "rb") as f:
        magic = f.read(6)
    if magic != b"\x93NUMPY":
        raise DataError(
            f"{shown}: not a .npy file (it does not start with the .npy header)",
            "write it with numpy.save",
        )
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as e:
        if "pickle" in str(e):
            raise DataError(
                f"{shown}: the array holds Python objects, which dtg never unpickles",
                "save a numeric array (np.save of a float or int array)",
            ) from None
        raise DataError(f"{shown}: cannot read as a .npy file: {first_line(e)}") from None
    except Exception as e:  # noqa: BLE001 - any failure of the reader is a corrupt file
        raise DataError(f"{shown}: cannot read as a .npy file: {first_line(e)}") from None


def _read_npz(path: Path, shown: str, key: str | None) -> np.ndarray:
    if not zipfile.is_zipfile(path):
        raise DataError(
            f"{shown}: not a .npz file (it is not a zip archive)", "write it with numpy.savez"
        )
    try:
        with np.load(path, allow_pickle=False) as z:
            name = _pick_key(shown, list(z.files), key, ".npz archive")
            return np.asarray(z[name])
    except DataError:
        raise
    except ValueError as e:
        if "pickle" in str(e):
            raise DataError(
                f"{shown}: the array holds Python objects, which dtg never unpickles"
            ) from None
        raise DataError(f"{shown}: cannot read as a .npz file: {first_line(e)}") from None
    except (zipfile.BadZipFile, OSError, EOFError, KeyError) as e:
        raise DataError(f"{shown}: cannot read as a .npz file: {first_line(e)}") from None


def _read_pt(path: Path, shown: str, key: str | None) -> np.ndarray:
    import torch  # heavy: only .pt files need it, and checking a model must not import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # protocol notes from the weights-only unpickler
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise DataError(
            f"{shown}: cannot read as a tensor file: it is corrupt or holds Python objects "
            "other than tensors (dtg loads .pt files with weights_only=True and never unpickles)",
            "save a single tensor with torch.save(tensor, path)",
        ) from None
    except Exception as e:  # noqa: BLE001 - any other failure of the reader is a corrupt file
        raise DataError(
            f"{shown}: cannot read as a tensor file (torch.load with weights_only=True): "
            f"{first_line(e)}",
            "save a single tensor with torch.save(tensor, path)",
        ) from None
    if isinstance(obj, Mapping):
        keys = [str(k) for k in obj]
        name = _pick_key(shown, keys, key, "saved dict")
        obj = {str(k): v for k, v in obj.items()}[name]
    if not isinstance(obj, torch.Tensor):
        raise DataError(
            f"{shown}: holds a {type(obj).__name__}, not a tensor",
            "save a single tensor with torch.save(tensor, path)",
        )
    t = obj.detach().cpu()
    if t.is_complex():
        raise DataError(f"{shown}: holds complex numbers; data must be real")
    if t.is_floating_point() and t.dtype not in (torch.float16, torch.float32, torch.float64):
        t = t.float()  # bfloat16 and float8 have no numpy dtype
    return t.numpy()


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _parse_csv(path: Path, shown: str) -> tuple[np.ndarray, list[int]]:
    """:returns: ``(array[rows, cols] float64, line number of each row)``."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(f"{shown}: not a text file; cannot read as .csv") from None
    lines = [(i + 1, ln) for i, ln in enumerate(text.splitlines()) if ln.strip()]
    if not lines:
        raise DataError(f"{shown}: the file has no rows")
    first = lines[0][1]
    delim = "," if "," in first else ";" if ";" in first else None

    def split(line: str) -> list[str]:
        if delim is None:
            return line.split()
        return [c.strip() for c in next(csv.reader(io.StringIO(line), delimiter=delim))]

    rows: list[list[float]] = []
    line_nos: list[int] = []
    width: int | None = None
    for k, (line_no, line) in enumerate(lines):
        cells = split(line)
        try:
            values = [float(c) for c in cells]
        except ValueError:
            if k == 0:
                continue  # a header row
            bad = next(c for c in cells if not _is_float(c))
            raise DataError(
                f"{shown}: line {line_no}: {bad!r} is not a number",
                "a .csv data file must be numeric (an optional header row is skipped)",
            ) from None
        if width is None:
            width = len(values)
        elif len(values) != width:
            raise DataError(
                f"{shown}: line {line_no} has {len(values)} columns, the first row has {width}"
            )
        rows.append(values)
        line_nos.append(line_no)
    if not rows:
        raise DataError(f"{shown}: the file has a header but no rows")
    return np.asarray(rows, dtype=np.float64), line_nos


#: The binary readers by (lower-case) suffix; ``.csv`` is parsed by :func:`read_array` itself.
READERS: dict[str, Callable[[Path, str, str | None], np.ndarray]] = {
    ".npy": _read_npy,
    ".npz": _read_npz,
    ".pt": _read_pt,
    ".pth": _read_pt,
}


def read_array(path: Path, shown: str, key: str | None) -> tuple[np.ndarray, list[int] | None]:
    """Read a data file's array by its suffix.

    :param path: the resolved path (its suffix is one of :data:`READERS` or ``.csv``).
    :param shown: the path as the user wrote it, for messages.
    :param key: the array's name in a ``.npz`` archive or a saved dict, or ``None``.
    :returns: the array and, for ``.csv``, the line number of each row (else ``None``).
    :raises DataError: for a corrupt, pickled, unreadable or non-numeric file.
    """
    try:
        if path.suffix.lower() == ".csv":
            return _parse_csv(path, shown)
        return READERS[path.suffix.lower()](path, shown, key), None
    except PermissionError:
        raise DataError(f"{shown}: permission denied") from None
    except OSError as e:  # an I/O error, or the file replaced by a folder since it was checked
        raise DataError(f"{shown}: cannot read: {e.strerror or first_line(e)}") from None

"""What the commands print and write: JSON-safe values, aligned tables, ``.npy`` bytes."""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np

__all__ = ["json_safe", "table", "npy_bytes"]


def json_safe(value: Any) -> Any:
    """JSON's view of a value: a non-finite float becomes ``None``, containers recursively.

    :param value: a number, text, or a dict or list of them.
    :returns: the value with every NaN and infinity replaced by ``None``.
    """
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return value


def table(rows: list[tuple[str, str]]) -> str:
    """``rows`` of (name, value) as two aligned columns.

    :returns: the lines joined by newlines.
    """
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def npy_bytes(array: Any) -> bytes:
    """:param array: a numpy array. :returns: it in NumPy's ``.npy`` format."""
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()

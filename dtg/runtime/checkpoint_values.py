"""The value checks of the checkpoint schema: each raises :class:`SchemaError` naming the field
(as a path: ``rng.numpy.keys``, ``optimizer.state[3].exp_avg``, ``model['nets.eps.0.weight']``)
and saying what it must be and what it holds (:func:`describe`, never the value in full).
"""

from __future__ import annotations

import math
from typing import Any

import torch

__all__ = [
    "SchemaError",
    "describe",
    "must",
    "integer",
    "number",
    "text",
    "tensor",
    "mapping",
    "exact_keys",
    "INT64",
]

INT64 = 2**63
_REAL_DTYPES = {
    torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.bool,
    torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64,
}  # fmt: skip


class SchemaError(Exception):
    """A field that does not hold what the schema says.

    :param field: the field, as a path (``rng.numpy.keys``, ``model['nets.eps.0.weight']``).
    :param problem: what it must be (``must be …``) or what is wrong with it.
    """

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"field '{field}' {problem}")
        self.field, self.problem = field, problem


def describe(value: Any) -> str:
    """:returns: a short description of a checkpoint value for a message."""
    if isinstance(value, torch.Tensor):
        kind = str(value.dtype).removeprefix("torch.")
        if value.is_floating_point() and value.numel() and not bool(torch.isfinite(value).all()):
            kind += " (not finite)"
        return f"a {kind} tensor of shape {tuple(value.shape)}"
    if isinstance(value, str):
        return repr(value) if len(value) <= 40 else f"{value[:37]!r}… ({len(value)} characters)"
    if isinstance(value, (list, tuple)):
        return f"a list of {len(value)} item{'s' if len(value) != 1 else ''}"
    if isinstance(value, dict):
        return f"a dict of {len(value)} entr{'ies' if len(value) != 1 else 'y'}"
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 120:
        return f"an integer of about {int(value.bit_length() * math.log10(2)) + 1} digits"
    if value is None or isinstance(value, (bool, int, float)):
        return repr(value)
    return f"a {type(value).__name__}"


def must(field: str, expected: str, value: Any) -> SchemaError:
    """:returns: the error "field F must be EXPECTED, got VALUE"."""
    return SchemaError(field, f"must be {expected}, got {describe(value)}")


def integer(field: str, value: Any, low: int = 0, high: int = INT64 - 1, what: str = "") -> int:
    """:returns: ``value`` when it is an ``int`` (not a bool) in ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        expected = what or (
            "a non-negative integer"
            + ("" if value is None or isinstance(value, (str, float)) else " below 2^63")
            if low == 0 and high == INT64 - 1
            else f"an integer in [{low}, {high}]"
        )
        raise must(field, expected, value)
    return value


def number(field: str, value: Any, low: float = -math.inf, what: str = "a finite number") -> float:
    """:returns: ``value`` when it is a finite ``float``, or an ``int`` (not a bool) of less
    than 64 bits, ≥ ``low``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or (isinstance(value, int) and abs(value) >= INT64)
        or not math.isfinite(value)
        or value < low
    ):
        raise must(field, what, value)
    return float(value)


def text(field: str, value: Any) -> None:
    if not isinstance(value, str):
        raise must(field, "a string", value)


def tensor(field: str, value: Any, dtypes: Any = None, shape: tuple | None = None) -> torch.Tensor:
    """Check a tensor: dense, of a real dtype (or one of ``dtypes``), of ``shape`` when given,
    finite when it is of a floating dtype.

    :returns: ``value``.
    """
    allowed = _REAL_DTYPES if dtypes is None else dtypes
    if not isinstance(value, torch.Tensor) or value.layout != torch.strided:
        raise must(field, "a tensor", value)
    if value.dtype not in allowed:
        names = "a real" if dtypes is None else "/".join(str(d)[6:] for d in dtypes)
        raise must(field, f"a tensor of {names} dtype", value)
    if shape is not None and tuple(value.shape) != tuple(shape):
        raise must(field, f"a tensor of shape {tuple(shape)}", value)
    if value.is_floating_point() and not bool(torch.isfinite(value).all()):
        count = int((~torch.isfinite(value)).sum())
        raise SchemaError(field, f"holds {count} NaN or infinite value{'s' if count > 1 else ''}")
    return value


def mapping(field: str, value: Any, what: str = "a dict") -> dict:
    if not isinstance(value, dict):
        raise must(field, what, value)
    return value


def exact_keys(field: str, value: dict, keys: set[str], optional: frozenset = frozenset()) -> None:
    """``value`` has exactly ``keys`` (those in ``optional`` may be missing)."""
    for key in value:
        if key not in keys:
            raise SchemaError(f"{field}.{key}" if isinstance(key, str) else field, "is unknown")
    for key in sorted(keys - optional):
        if key not in value:
            raise SchemaError(f"{field}.{key}", "is missing")

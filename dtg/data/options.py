"""Checks of single option values shared by the data sources (numbers, integers, sizes).

Each check names the source and the option in its :class:`DataError`, returns the value in its
normal form (``float`` or ``int``), and never accepts ``true``/``false`` as a number.
"""

from __future__ import annotations

import math
from typing import Any

from .errors import DataError

__all__ = ["as_float", "as_int", "check_n", "check_noise"]


def as_float(
    source: str, name: str, value: object, low: float, high: float, *, open_low: bool
) -> float:
    """A number in ``[low, high)`` (or ``(low, high)`` when ``open_low``).

    :param source: the source's name, for the message.
    :param name: the option's name, for the message.
    :param value: the given value.
    :param low: the smallest valid value (excluded when ``open_low``).
    :param high: the bound above (excluded; ``math.inf`` for none).
    :param open_low: whether ``low`` itself is refused.
    :returns: the value as a float.
    :raises DataError: for a non-number or a value out of range.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DataError(f"{source}: option {name} must be a number, got {value!r}")
    number = float(value)
    if not ((number > low if open_low else number >= low) and number < high):
        low_text = f"> {low:g}" if open_low else f">= {low:g}"
        high_text = f" and < {high:g}" if math.isfinite(high) else ""
        raise DataError(f"{source}: option {name} must be {low_text}{high_text}, got {value!r}")
    return number


def as_int(source: str, name: str, value: object, low: int) -> int:
    """A whole number ``>= low`` (``3.0`` is accepted as 3).

    :param source: the source's name, for the message.
    :param name: the option's name, for the message.
    :param value: the given value.
    :param low: the smallest valid value.
    :returns: the value as an int.
    :raises DataError: for a non-integer or a value below ``low``.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise DataError(f"{source}: option {name} must be an integer, got {value!r}")
    if int(value) < low:
        raise DataError(f"{source}: option {name} must be >= {low}, got {value!r}")
    return int(value)


def check_noise(source: str, options: dict[str, Any], name: str = "noise") -> None:
    """Normalise a non-negative noise level ``options[name]`` in place.

    :param source: the source's name, for the message.
    :param options: the bound options (changed in place).
    :param name: the option's name.
    :raises DataError: for a negative or non-numeric value.
    """
    options[name] = as_float(source, name, options[name], 0.0, math.inf, open_low=False)


def check_n(source: str, options: dict[str, Any]) -> None:
    """Normalise the number of generated points ``options["n"]`` (at least 10) in place.

    :param source: the source's name, for the message.
    :param options: the bound options (changed in place).
    :raises DataError: for a non-integer or a value below 10.
    """
    options["n"] = as_int(source, "n", options["n"], 10)

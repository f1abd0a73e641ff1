"""The options of a training run: checked against ``dtg.ir.options.TRAIN_OPTIONS`` and merged.

A run's options come, from weakest to strongest, from

1. the table's defaults,
2. the model's ``train { … }`` block,
3. the checkpoint a run resumes (``--resume``),
4. ``--set KEY=VALUE`` (the ``overrides`` of :func:`dtg.runtime.train.train`),
5. the dedicated flags ``--steps``, ``--batch``, ``--lr``, ``--seed`` (its keyword arguments).

A value given twice on one command line (``--steps 10 --set steps=20``) is refused by the CLI.
The ``.dtg`` block is checked by the checker; values from the command line or Python are checked
here, against the same table, by :func:`coerce_option`.
"""

from __future__ import annotations

import enum
import math
from typing import Any

from ..errors import DtgRuntimeError, did_you_mean
from ..ir.options import TRAIN_OPTIONS, OptionValueError, check_option

__all__ = ["OptionError", "coerce_option", "resolve_options"]


class OptionError(ValueError):
    """A bad train option (unknown key or value out of range); ``hint`` may suggest a fix.

    :param message: what is wrong, naming the option.
    :param hint: a suggestion (e.g. the option meant), or ``None``.
    """

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message, self.hint = message, hint


def coerce_option(key: str, value: Any) -> int | float | bool | str:
    """Check one train option against :data:`dtg.ir.options.TRAIN_OPTIONS`.

    :param key: the option name (``steps``, ``lr``, …).
    :param value: a number (a bool for true/false options), or text from ``--set KEY=VALUE``.
    :returns: the value as ``int``, ``float``, ``bool`` or, for a choice, its name (``str``).
    :raises OptionError: for an unknown key (with a did-you-mean) or a bad value.
    """
    spec = TRAIN_OPTIONS.get(key)
    if spec is None:
        raise OptionError(
            f"unknown train option '{key}' (options: {', '.join(TRAIN_OPTIONS)})",
            did_you_mean(key, TRAIN_OPTIONS),
        )
    if spec.kind == "bool":
        return _flag(key, value)
    if spec.kind == "choice":
        text = str(value.value if isinstance(value, enum.Enum) else value).strip()
        try:
            return str(check_option(spec, text).value)
        except OptionValueError as error:
            expected = f"train option '{key}' must be {error.expected}, got {_shown(value)}"
            raise OptionError(expected, error.hint) from None
    number = _number(value)
    if isinstance(number, float) and not math.isfinite(number):
        raise OptionError(f"train option '{key}' must be a finite number, got {_shown(value)}")
    try:
        return check_option(spec, number)
    except OptionValueError as error:
        expected = error.expected
        raise OptionError(f"train option '{key}' must be {expected}, got {_shown(value)}") from None


def _flag(key: str, value: Any) -> bool:
    """A true/false option: a bool, or the text ``true``/``false`` of ``--set KEY=VALUE``."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "false"):
        return text == "true"
    raise OptionError(f"train option '{key}' must be true or false, got {_shown(value)}")


def _number(value: Any) -> int | float:
    """``value`` as a number: text of a whole number stays an exact ``int`` (however long),
    other text is read as a float; anything else (a bool, ``None``, a list) is NaN."""
    if isinstance(value, bool):
        return math.nan
    if isinstance(value, (int, float)):
        return value
    text = str(value).strip()
    digits = text.lstrip("+-")
    if digits.isascii() and digits.isdigit():
        # int() refuses more than 4,300 digits; such a number is far past every range anyway
        return int(text) if len(digits) <= 4000 else (-1 if text.startswith("-") else 1) * 2**63
    try:
        return float(text)
    except ValueError:
        return math.nan


def _shown(value: Any, limit: int = 40) -> str:
    """``value`` for a message: at most ``limit`` characters (a 5,000-digit number is cut)."""
    text = str(value)
    return text if len(text) <= limit else f"{text[: limit - 12]}… ({len(text)} characters)"


def resolve_options(
    block: dict[str, Any], saved: dict[str, Any] | None, explicit: dict[str, Any]
) -> dict[str, Any]:
    """The options of a run (see the module docstring for the order).

    :param block: the model's ``train { … }`` block (already checked by the checker).
    :param saved: the options recorded in the checkpoint a run resumes, or ``None``.
    :param explicit: options the caller passed; ``None`` values mean "not given".
    :returns: every option of ``TRAIN_OPTIONS``, with its value.
    :raises DtgRuntimeError: for a bad explicit option (unknown name or value out of range).
    """
    defaults = {key: spec.default for key, spec in TRAIN_OPTIONS.items()}
    options = {**defaults, **dict(block), **(saved or {})}
    for key, value in options.items():  # a mode enum is kept as its name (plain data)
        if isinstance(value, enum.Enum):
            options[key] = str(value.value)
    for key, value in explicit.items():
        if value is not None:
            try:
                options[key] = coerce_option(key, value)
            except OptionError as error:
                raise DtgRuntimeError(
                    error.message, hints=[error.hint] if error.hint else []
                ) from None
    return options

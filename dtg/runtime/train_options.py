"""The options of a training run: checked against ``dtg.ir.options.TRAIN_OPTIONS`` and merged.

A run's options come, from weakest to strongest, from the table's defaults, the model's
``train { … }`` block, the checkpoint a run resumes, and what the caller passes (``--steps``,
``--set KEY=VALUE``, keyword arguments of :func:`dtg.runtime.train.train`). The ``.dtg`` block is
checked by the checker; values from the command line or Python are checked here, against the same
table, by :func:`coerce_option`.
"""

from __future__ import annotations

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


def coerce_option(key: str, value: Any) -> int | float:
    """Check one train option against :data:`dtg.ir.options.TRAIN_OPTIONS`.

    :param key: the option name (``steps``, ``lr``, …).
    :param value: a number, or text from ``--set KEY=VALUE``.
    :returns: the value as ``int`` or ``float``.
    :raises OptionError: for an unknown key (with a did-you-mean) or a bad value.
    """
    spec = TRAIN_OPTIONS.get(key)
    if spec is None:
        raise OptionError(
            f"unknown train option '{key}' (options: {', '.join(TRAIN_OPTIONS)})",
            did_you_mean(key, TRAIN_OPTIONS),
        )
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number):
        raise OptionError(f"train option '{key}' must be a finite number, got {value!r}")
    try:
        return check_option(spec, number)
    except OptionValueError as error:
        raise OptionError(f"train option '{key}' must be {error.expected}, got {value}") from None


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
    for key, value in explicit.items():
        if value is not None:
            try:
                options[key] = coerce_option(key, value)
            except OptionError as error:
                raise DtgRuntimeError(
                    error.message, hints=[error.hint] if error.hint else []
                ) from None
    return options

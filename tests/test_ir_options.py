"""The one option validator (dtg.ir.options.check_option): what each kind of option accepts,
and that the checker (a .dtg option) and the runtime (--set) refuse with the same words."""

from __future__ import annotations

import pytest

import dtg
from dtg.ir import ObjectiveKind
from dtg.ir.options import (
    OBJECTIVE_OPTIONS,
    TRAIN_OPTIONS,
    LevelSampling,
    OptionValueError,
    Weight,
    check_option,
)
from dtg.runtime.train_options import OptionError, coerce_option

DENOISING = OBJECTIVE_OPTIONS[ObjectiveKind.DENOISING]


def test_choices_become_their_mode_enums() -> None:
    assert check_option(DENOISING["weight"], "min_snr") is Weight.MIN_SNR
    assert check_option(DENOISING["sampling"], "importance") is LevelSampling.IMPORTANCE
    with pytest.raises(OptionValueError) as info:
        check_option(DENOISING["weight"], "min_snrr")
    assert info.value.expected == "one of simple, elbo, min_snr"
    assert info.value.hint is not None and "min_snr" in info.value.hint


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("steps", 0, "≥ 1"),
        ("steps", 2.5, "a whole number"),
        ("steps", 2**63, "a whole number below 2^63"),
        ("lr", 0.0, "> 0"),
        ("lr", float("inf"), "finite"),
        ("ema", 1.5, "≤ 1"),
        ("seed", True, "a number"),
    ],
)
def test_numbers_are_refused_with_what_they_must_be(key: str, value, expected: str) -> None:
    with pytest.raises(OptionValueError) as info:
        check_option(TRAIN_OPTIONS[key], value)
    assert info.value.expected == expected


def test_whole_numbers_come_back_as_int() -> None:
    value = check_option(TRAIN_OPTIONS["steps"], 3.0)
    assert value == 3 and type(value) is int


def test_checker_and_set_refuse_with_the_same_words() -> None:
    source = (
        "model m {\n  data x : real[2] ~ moons()\n  steps T = 10\n"
        "  net eps : (real[2], time) -> real[2] = mlp(hidden = [8])\n"
        "  destroy x[t] ~ Normal(sqrt(0.9) * x[t-1], sqrt(0.1))\n"
        "  generate x[T] ~ Normal(0, 1)\n  generate x[t-1] ~ Guess(x[t], eps)\n"
        "  objective denoising\n  train { ema = 1.5 }\n}\n"
    )
    with pytest.raises(dtg.DtgTypeError, match="must be ≤ 1, got 1.5"):
        dtg.loads(source)
    with pytest.raises(OptionError, match="must be ≤ 1, got 1.5"):
        coerce_option("ema", "1.5")

"""``repr(program)`` and ``repr(model)``: a line per model, not the dataclasses' kilobytes."""

from __future__ import annotations

import pytest
from conftest import EXAMPLES, example_paths

import dtg
from dtg.ir.summary import summarize

TWO_MODELS = """
model parent {
  data x : real[2] ~ moons()
  steps T = 3
  net eps : (real[2], time) -> real[2] = mlp(hidden = [8])
  destroy  x[t]   ~ Normal(0.9 * x[t-1], 0.3)
  generate x[T]   ~ Normal(0, 1)
  generate x[t-1] ~ Guess(x[t], eps)
  objective denoising
}
model child extends parent {
  reward r(x) = sum(x)
  objective relative_trajectory_balance
}
"""


@pytest.mark.parametrize("path", example_paths(), ids=lambda p: p.stem)
def test_program_repr_is_one_short_line(path) -> None:
    program = dtg.load(path)
    text = repr(program)
    assert "\n" not in text and len(text) < 400, text
    assert str(path) in text and f"model {path.stem}" in text
    ir = program.model()
    assert f"{ir.steps_name} = {ir.steps}" in text  # the number of levels, as declared
    assert f"objective {ir.objective.kind.value}" in text


def test_program_repr_names_what_the_source_declares() -> None:
    text = repr(dtg.load(EXAMPLES / "ddpm_moons.dtg"))
    # Read off examples/ddpm_moons.dtg: data x : real[2] ~ moons(…), steps T = 100, a
    # linear-Gaussian destroy, a Normal(0, 1) start, Guess with the net eps, denoising.
    for part in (
        "ddpm_moons",
        "data x : real[2] ~ moons",
        "T = 100",
        "destroy GaussianShuffle",
        "start x[T] ~ Normal(0, 1)",
        "generate Guess [eps]",
        "objective denoising",
    ):
        assert part in text, (part, text)
    assert str(dtg.load(EXAMPLES / "ddpm_moons.dtg")) == text  # print() shows the same


def test_repr_of_a_child_names_its_parent_and_reward() -> None:
    text = repr(dtg.load(EXAMPLES / "rtb_even_digits.dtg"))
    assert "rtb_even_digits extends ddpm_digits" in text and "reward even" in text
    assert "objective relative_trajectory_balance" in text
    assert text.count("ModelIR") == 0 and len(text) < 400  # not the parent's whole IR


def test_repr_of_several_models_is_a_line_each() -> None:
    lines = repr(dtg.loads(TWO_MODELS)).splitlines()
    assert lines[0] == "<Program <string>, 2 models:"
    assert lines[1].startswith("  model parent: data x : real[2] ~ moons, T = 3; ")
    assert lines[2].startswith("  model child extends parent: ")
    assert lines[2].endswith("reward r; objective relative_trajectory_balance>")


def test_summary_cuts_a_long_start() -> None:
    text = TWO_MODELS.replace("Normal(0, 1)", "Normal(0, 1 + 0 * 123456789 * 123456789 * 12345)")
    line = summarize(dtg.loads(text).model("parent"))
    start = line.split("start x[T] ~ ")[1].split(", generate")[0]
    assert start.startswith("Normal(0, 1 + 0 * 123456789") and start.endswith("…")
    assert len(start) <= 32 and "12345)" not in line


def test_model_ir_repr_is_one_line() -> None:
    ir = dtg.load(EXAMPLES / "rtb_even_digits.dtg").model()
    text = repr(ir)
    assert "\n" not in text and len(text) < 400, len(text)
    assert text == f"<ModelIR {summarize(ir)}>"

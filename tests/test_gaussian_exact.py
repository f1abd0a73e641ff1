"""Exact schedules (issue 19): where a check needs a value exactly (keep = 0 or std = 0 at
t = T, a std that must not be negative), sympy decides what float64 rounds; a negative schedule
is reported at the schedule.

References written out here: α(t) = cos²(πt/2T) and the cosine Gaussian chain's marginals by a
hand loop in numpy; the exact values by hand (cos(π/2) = 0, 0.3 − 0.1·3 = 0).
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import sympy as sp
import torch

import dtg
from dtg.check import exact
from dtg.check.symbolic import T_SYMBOL
from dtg.errors import DtgRangeError
from dtg.runtime.loop import train

MASKED = """
model cosine_mdlm {
  data x : token(17)[64] ~ digits()
  steps T = 8
  schedule alpha(t) = ALPHA
  net logits : (token(17)[64], time) -> real[64, 17] = mlp(hidden = [16])
  destroy  x[t]   ~ Mask(x[t-1], keep = alpha(t) / alpha(t-1))
  generate x[T]   = masked
  generate x[t-1] ~ Guess(x[t], logits)
  objective masking
}
"""

POINT = """
model cosine_point {
  data x : real[2] ~ moons(noise = 0.05)
  steps T = 20
  schedule c(t) = COS
  net x0 : (real[2], time) -> real[2] = mlp(hidden = [16])
  destroy  x[t]   ~ Normal(c(t) * x[t-1], 0.5 * c(t))
  generate x[T]   = 0
  generate x[t-1] ~ Guess(x[t], x0, predict = sample)
  objective elbo
}
"""

COSINE_DDPM = """
model cosine_ddpm {
  data x : real[2] ~ moons(noise = 0.05)
  steps T = 20
  schedule abar(t) = cos(pi/2 * t/T)^2
  schedule beta(t) = 1 - abar(t) / abar(t-1)
  net eps : (real[2], time) -> real[2] = mlp(hidden = [16])
  destroy  x[t]   ~ Normal(sqrt(1 - beta(t)) * x[t-1], sqrt(beta(t)))
  generate x[T]   ~ Normal(0, 1)
  generate x[t-1] ~ Guess(x[t], eps)
  objective denoising
}
"""


def trains(model, tmp_path) -> list[float]:
    torch.manual_seed(0)
    run = train(model, steps=2, batch=8, out=tmp_path / "run", progress=False)
    assert len(run.losses) == 2 and all(math.isfinite(v) for v in run.losses), run.losses
    return run.losses


@pytest.fixture(autouse=True)
def _threads(one_thread):
    yield


def test_cosine_masked_diffusion_checks_and_trains(tmp_path) -> None:
    """α(t) = cos²(πt/2T) is exactly 0 at t = T (float64: 3.9e-31 for keep there)."""
    ir = dtg.loads(MASKED.replace("ALPHA", "cos(pi/2 * t/T)^2")).model()
    levels = np.arange(9)
    hand = np.cos(np.pi / 2 * levels / 8) ** 2
    assert ir.destroy.tables["keep"][8] == 0.0 and ir.marginals["alpha"][8] == 0.0
    np.testing.assert_allclose(ir.marginals["alpha"], hand, rtol=0, atol=1e-12)
    trains(dtg.loads(MASKED.replace("ALPHA", "cos(pi/2 * t/T)^2")).compile("cpu"), tmp_path)


def test_a_keep_within_rounding_but_not_zero_is_explained() -> None:
    """π/2 written as 1.5707963 is not π/2: keep(T) ≈ 7e-16 is near 0 but not 0."""
    text = MASKED.replace("ALPHA", "cos(1.5707963 * t/T)^2")
    with pytest.raises(DtgRangeError) as info:
        dtg.loads(text)
    message = str(info.value.message)
    assert "within float rounding of 0" in message and "not exactly 0" in message
    assert "all-masked" in message
    assert info.value.span.line == 7  # the keep, where the fix goes
    assert any("exactly 0 at t = 8" in hint for hint in info.value.hints)


def test_cosine_gaussian_into_a_point_checks_and_trains(tmp_path) -> None:
    """std = 0.5·cos(πt/2T) is exactly 0 at t = T (float64: 3.1e-17), into the point 0."""
    ir = dtg.loads(POINT.replace("COS", "cos(pi/2 * t/T)")).model()
    a, s = ir.destroy.tables["a"], ir.destroy.tables["s"]
    assert s[20] == 0.0 and a[20] == 0.0 and ir.marginals["var"][20] == 0.0
    # Hand loop: m_t = ∏ a_k, v_t = a_t² v_{t-1} + s_t² with a_t = cos(πt/40), s_t = a_t/2.
    m, v = [1.0], [0.0]
    for t in range(1, 21):
        c = math.cos(math.pi * t / 40) if t < 20 else 0.0
        m.append(c * m[-1])
        v.append(c * c * v[-1] + (0.5 * c) ** 2)
    np.testing.assert_allclose(ir.marginals["mean"], m, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ir.marginals["var"], v, rtol=0, atol=1e-12)
    assert ir.marginals["post_xt"][20] == 0.0  # x[T] is the point: it carries nothing
    assert ir.marginals["post_var"][20] == pytest.approx(v[19], abs=1e-15)
    trains(dtg.loads(POINT.replace("COS", "cos(pi/2 * t/T)")).compile("cpu"), tmp_path)


def test_a_std_within_rounding_but_not_zero_is_explained() -> None:
    text = POINT.replace("COS", "cos(1.5707963267948966 * t/T)")  # a decimal, not π/2
    with pytest.raises(DtgRangeError) as info:
        dtg.loads(text)
    message = info.value.message
    assert "the std 0.5 * c(t) is 3.1e-17 at level t = 20, within float rounding of 0" in message
    assert "generation starts at a point" in message


V_PREDICTION = COSINE_DDPM.replace("Guess(x[t], eps)", "Guess(x[t], eps, predict = v_prediction)")


def test_cosine_gaussian_schedule_checks_trains_and_samples(tmp_path) -> None:
    ir = dtg.loads(V_PREDICTION).model()
    abar = np.cos(np.pi / 2 * np.arange(21) / 20) ** 2
    np.testing.assert_allclose(ir.marginals["mean"] ** 2, abar, rtol=0, atol=1e-12)
    model = dtg.loads(V_PREDICTION).compile("cpu")
    trains(model, tmp_path)
    torch.manual_seed(1)
    samples = model.sample(256)
    # x̂[0] = (m x - s v̂) / (m² + s²) stays bounded where m_T = 0: the samples are O(1)
    assert bool(torch.isfinite(samples).all()) and float(samples.abs().max()) < 50


def test_epsilon_prediction_where_x0_is_forgotten_is_refused() -> None:
    """β(T) = 1 (a_T = 8e-16 in float64): ε-prediction's samples were ~1e16."""
    with pytest.raises(DtgRangeError) as info:
        dtg.loads(COSINE_DDPM)
    message = info.value.message
    assert "Guess predicts epsilon, but the destroy step at level t = 20 keeps none" in message
    a_20 = math.sqrt(math.cos(math.pi / 2) ** 2 / math.cos(math.pi / 2 * 19 / 20) ** 2)
    assert f"{a_20:.3g}" in message and info.value.span.line == 10
    assert any("predict = sample or predict = v_prediction" in hint for hint in info.value.hints)


def test_a_square_root_of_rounding_below_zero_is_its_exact_value() -> None:
    """0.3 − 0.1·3 is −5.6e-17 in float64 (sqrt: nan) but exactly 0: a std of 0 at t = T."""
    text = POINT.replace("c(t) * x[t-1], 0.5 * c(t)", "0.5 * x[t-1], sqrt(c(t))")
    ir = dtg.loads(text.replace("COS", "0.3 - 0.1 * t").replace("T = 20", "T = 3")).model()
    assert ir.destroy.tables["s"][3] == 0.0
    np.testing.assert_allclose(ir.destroy.tables["s"][1:3], np.sqrt([0.2, 0.1]), atol=1e-15)


def test_exactly_reads_decimals_as_written() -> None:
    t = T_SYMBOL
    assert exact.exactly(sp.cos(sp.pi / 2 * t / 16) ** 2, 16, 0.0) is True
    assert exact.exactly(1 - sp.Float(0.1) * t, 10, 0.0) is True
    assert exact.exactly(sp.cos(sp.Float(1.5707963267948966) * t / 16), 16, 0.0) is False
    assert exact.exactly(t ** (10**12), 2, 0.0) is None  # too large to try: no hang
    assert exact.value_at(sp.sqrt(sp.Float(0.3) - sp.Float(0.1) * t), 3) == 0.0
    assert exact.value_at(sp.sqrt(-t), 3) is None  # a true negative stays undefined
    assert exact.near(3.9e-31, 0.0) and not exact.near(1e-6, 0.0) and not exact.near(0.0, 0.0)


NEGATIVE = """
model negative {
  data x : real[2] ~ moons(noise = 0.05)
  steps T = 10
  schedule beta(t) = 0.5 - t/T
  net eps : (real[2], time) -> real[2] = mlp(hidden = [8])
  destroy  x[t]   ~ DESTROY
  generate x[T]   ~ Normal(0, 1)
  generate x[t-1] ~ Guess(x[t], eps)
  objective denoising
}
"""


@pytest.mark.parametrize(
    ("destroy", "level", "value", "how"),
    [
        ("Normal(sqrt(1 - beta(t)) * x[t-1], sqrt(beta(t)))", 6, "-0.1", "square root"),
        ("Normal(0.5 * x[t-1], beta(t-1)^0.5)", 6, "-0.1", "fractional power"),
        ("Normal((1 + log(beta(t) + 0.05) / 100) * x[t-1], 0.5)", 6, "-0.1", "takes its log"),
        ("Normal(0.5 * x[t-1], 0.05 + beta(t))", 6, "-0.1", "std 0.05 + beta(t) is then negative"),
    ],
)
def test_a_negative_schedule_is_reported_at_the_schedule(destroy, level, value, how) -> None:
    """Not as a NaN std in the kernel: the message names the schedule, level and value, and
    points at the schedule's definition (line 5)."""
    with pytest.raises(DtgRangeError) as info:
        dtg.loads(NEGATIVE.replace("DESTROY", destroy), file="negative.dtg")
    error = info.value
    assert f"the schedule 'beta' is negative at level t = {level}" in error.message
    assert f"beta({level}) = {value}" in error.message and how in error.message
    assert "nan" not in error.message
    assert (error.span.line, error.span.column) == (5, 3)
    assert error.span.end_line == 5 and error.hints[-1] == "it is used on line 7"


def test_a_negative_keep_schedule_is_reported_at_the_schedule() -> None:
    text = MASKED.replace("ALPHA", "1 - t/T").replace(
        "keep = alpha(t) / alpha(t-1)", "keep = alpha(t) - 0.2"
    )
    text = text.replace("schedule alpha(t) = 1 - t/T", "schedule alpha(t) = 0.9 - t/T")
    text = text.replace("keep = alpha(t) - 0.2", "keep = alpha(t)")
    with pytest.raises(DtgRangeError) as info:
        dtg.loads(text)
    assert "the schedule 'alpha' is negative at level t = 8 (alpha(8) = -0.1)" in info.value.message
    assert info.value.span.line == 5


def test_a_schedule_that_is_rightly_negative_is_not_blamed() -> None:
    """A log-SNR λ(t) < 0 under sigmoid is fine; the kernel's own problem is reported there."""
    text = NEGATIVE.replace("DESTROY", "Normal(0.5 * x[t-1], sigmoid(beta(t)) - 0.45)")
    with pytest.raises(DtgRangeError) as info:
        dtg.loads(text)
    assert "std = " in info.value.message and info.value.span.line == 7


def test_exact_evaluation_is_bounded_where_it_is_optional() -> None:
    """A keep within rounding of 1 on every level (cos(1e-7) = 1 - 5e-15) is decided exactly on a
    few levels only: sympy takes about 10 ms a level, 30 s for all 3000."""
    text = """
    model near_one {
      data x : token(3)[2] ~ categorical(probs = [0.5, 0.3, 0.2])
      steps T = 3000
      net f : (token(3)[2], time) -> real[2, 3] = mlp(hidden = [4])
      destroy  x[t]   ~ Shuffle(x[t-1], keep = cos(1e-7 * (1 + t/T)))
      generate x[T]   ~ Categorical(logits = 0)
      generate x[t-1] ~ Guess(x[t], f)
      objective elbo
    }"""
    start = time.process_time()
    ir = dtg.loads(text).model()
    assert time.process_time() - start < 5.0
    assert ir.destroy.tables["keep"][1] < 1.0  # not exactly 1: left as float64 gives it


def test_a_division_by_zero_in_a_schedule_is_reported_at_the_schedule() -> None:
    text = COSINE_DDPM.replace(
        "schedule abar(t) = cos(pi/2 * t/T)^2\n  schedule beta(t) = 1 - abar(t) / abar(t-1)",
        "schedule beta(t) = 0.1 / (t - 3)^2",
    ).replace("Guess(x[t], eps)", "Guess(x[t], eps, predict = v_prediction)")
    with pytest.raises(DtgRangeError) as info:
        dtg.loads(text)
    assert info.value.span.line == 5  # the schedule, not the kernel that uses it
    assert (
        "the schedule 'beta' has no finite value at level t = 3 (beta(3) = inf)"
        in info.value.message
    )

"""A reward's declared log Z and modes (``reward … { log_z = …, modes = […] }``) and the sampler
metrics they give: log Ẑ, log Ẑ_RW, ESS, Δlog Z, mode coverage; each checked against a closed
form or a hand computation (issue 19)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import EXAMPLES

import dtg
from dtg.runtime.evaluate import evaluate
from dtg.runtime.sampler_eval import importance_estimates, mode_coverage, well_sign_errors
from dtg.targets import MANYWELL_LOG_Z, TARGETS

#: A sampler of a Gaussian target: the Brownian bridge of variance SIGMA2 pinned at 0 and, with
#: no drift, generation steps of variance SIGMA2 / T from 0. Its x[0] is N(0, GEN_VAR · I).
SAMPLER = """
model gauss {{
  space x : real[{dim}]
  steps T = {steps}
  reward logr(x) = -0.5 * sum(x^2) / {target_var}{options}
  schedule s(t) = (T - t) / (T - t + 1)
  generate x[T]   = 0
  generate x[t-1] ~ Normal(x[t], sqrt({gen_var} / T))
  destroy  x[t]   ~ Normal(s(t) * x[t-1], sqrt({gen_var} / T * s(t)))
  objective trajectory_balance
}}
"""


def sampler(dim=2, steps=4, target_var=1.0, gen_var=1.0, options=""):
    return dtg.loads(
        SAMPLER.format(
            dim=dim, steps=steps, target_var=target_var, gen_var=gen_var, options=options
        ),
        file="gauss.dtg",
    )


def gaussian_log_z(dim: int, var: float) -> float:
    """log ∫ exp(-|x|² / (2 var)) dx over R^dim."""
    return 0.5 * dim * math.log(2 * math.pi * var)


# ------------------------------------------------------------------ the estimates


def test_perfect_sampler_estimates_the_closed_form_log_z(one_thread) -> None:
    # The generation chain draws exactly N(0, 4 I) and the destruction is its time reversal,
    # so every log-weight equals log Z = 1.5 log(8π).
    program = sampler(dim=3, target_var=4.0, gen_var=4.0, options=" { log_z = 1.5 * log(8 * pi) }")
    model = program.models[-1]
    assert model.reward.log_z == pytest.approx(gaussian_log_z(3, 4.0), rel=1e-12)
    metrics = evaluate(program.compile("cpu"), n=1000)
    truth = gaussian_log_z(3, 4.0)
    assert metrics["log_z_elbo"] == pytest.approx(truth, abs=1e-4)
    assert metrics["log_z_rw"] == pytest.approx(truth, abs=1e-4)
    assert metrics["ess"] == pytest.approx(1.0, abs=1e-5)
    assert metrics["log_z"] == pytest.approx(truth, rel=1e-12)
    assert metrics["delta_log_z"] < 1e-4 and metrics["delta_log_z_rw"] < 1e-4
    assert "eubo" not in metrics and "w2" not in metrics  # no exact samples of this target


def test_imperfect_sampler_against_the_closed_form_kl(one_thread) -> None:
    # T = 1: x[0] ~ q = N(0, 2 I) and w = log r(x) − log q(x). So E[w] = log Z − KL(q ‖ p) with
    # KL = d/2 (2 − 1 − log 2), and ESS → (E e^w)² / E e^{2w} = 1 / (√2 / √1.5)^d = 0.75 (d = 2).
    program = sampler(dim=2, steps=1, gen_var=2.0, options=" { log_z = log(2 * pi) }")
    metrics = evaluate(program.compile("cpu").double(), n=8000)
    truth = gaussian_log_z(2, 1.0)
    kl = 0.5 * 2 * (2.0 - 1.0 - math.log(2.0))
    assert metrics["log_z_elbo"] == pytest.approx(truth - kl, abs=0.05)  # SE 0.011
    assert metrics["log_z_rw"] == pytest.approx(truth, abs=0.03)  # SE 0.007
    assert metrics["ess"] == pytest.approx(0.75, abs=0.03)
    assert metrics["delta_log_z"] == pytest.approx(kl, abs=0.05)


def test_importance_estimates_by_hand() -> None:
    same = importance_estimates(torch.full((7,), 2.5))
    assert same == pytest.approx({"log_z_elbo": 2.5, "log_z_rw": 2.5, "ess": 1.0})
    # weights 1 and 3: mean log w = log(3)/2, log mean w = log 2, ESS = 4² / (2 · 10) = 0.8
    two = importance_estimates(torch.tensor([0.0, math.log(3.0)]))
    assert two == pytest.approx(
        {"log_z_elbo": math.log(3.0) / 2, "log_z_rw": math.log(2.0), "ess": 0.8}
    )
    # a zero weight (log r = -inf) counts in K: mean weight 1/2, ESS = 1 / (2 · 1)
    zero = importance_estimates(torch.tensor([0.0, -math.inf]))
    assert zero["log_z_rw"] == pytest.approx(math.log(0.5)) and zero["ess"] == pytest.approx(0.5)
    # far from 0 the estimates do not overflow
    big = importance_estimates(torch.tensor([1000.0, 1000.0 + math.log(3.0)]))
    assert big["log_z_rw"] == pytest.approx(1000.0 + math.log(2.0))


def test_mode_coverage_on_hand_made_samples() -> None:
    modes = [[0.0, 0.0], [5.0, 5.0], [-5.0, 5.0]]
    samples = torch.tensor([[0.1, 0.0], [4.0, 4.5], [0.0, 0.2]])
    # distances to the nearest sample: 0.1, √(1 + 0.25) = 1.118, √(25 + 23.04) = 6.93
    assert mode_coverage(samples, modes, 1.0) == (pytest.approx(1 / 3), 1)
    assert mode_coverage(samples, modes, 1.2) == (pytest.approx(2 / 3), 2)
    assert mode_coverage(samples, modes, 0.1) == (0.0, 0)  # strictly within the radius
    assert mode_coverage(samples, modes, 7.0) == (1.0, 3)


def test_mode_coverage_in_eval(one_thread) -> None:
    # Samples of N(0, I): [0, 0] is covered; [40, 0] is 40 standard deviations away.
    program = sampler(options=" { modes = [[0, 0], [40, 0]], mode_radius = 0.5 }")
    metrics = evaluate(program.compile("cpu"), n=500)
    assert metrics["mode_coverage"] == 0.5 and metrics["modes_covered"] == 1
    assert metrics["modes"] == 2
    assert "log_z" not in metrics and "delta_log_z" not in metrics  # no log Z declared


def test_default_mode_radius_is_half_the_smallest_gap() -> None:
    model = sampler(options=" { modes = [[0, 0], [3, 4], [10, 0]] }").models[-1]
    assert model.reward.modes == ((0.0, 0.0), (3.0, 4.0), (10.0, 0.0))
    assert model.reward.mode_radius == pytest.approx(2.5)  # |[3, 4]| = 5
    one = sampler(dim=1, options=" { modes = [[-1]] }").models[-1]
    assert one.reward.modes == ((-1.0,),) and one.reward.mode_radius == 1.0


# ------------------------------------------------------------------ the built-in targets


def test_built_in_targets_declare_the_same_way() -> None:
    gmm = TARGETS["gmm25"]
    grid = (-10.0, -5.0, 0.0, 5.0, 10.0)
    assert sorted(gmm.modes) == sorted((a, b) for a in grid for b in grid)
    assert gmm.mode_radius == pytest.approx(3 * math.sqrt(0.3))
    assert TARGETS["manywell"].log_z == pytest.approx(MANYWELL_LOG_Z, rel=1e-15)
    assert TARGETS["funnel"].modes == () and TARGETS["funnel"].log_z == 0.0
    reward = dtg.load("examples/gmm25_tb.dtg").models[-1].reward
    assert reward.log_z == 0.0 and reward.modes == gmm.modes
    assert reward.mode_radius == gmm.mode_radius
    many = dtg.load("examples/manywell_tb.dtg").models[-1].reward
    assert many.log_z == pytest.approx(164.6957, abs=1e-4) and many.modes == ()


def test_gmm25_modes_are_its_component_means() -> None:
    # The declared modes are where the density peaks: each is a local maximum of log r.
    x = torch.tensor(TARGETS["gmm25"].modes, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(TARGETS["gmm25"].log_reward(x).sum(), x)
    assert grad.abs().max() < 1e-6
    assert sampler(options="").models[-1].reward.modes == ()


def test_a_target_may_replace_its_modes_but_not_its_log_z() -> None:
    text = SAMPLER.format(dim=2, steps=4, target_var=1, gen_var=1, options="")
    text = text.replace("-0.5 * sum(x^2) / 1", "gmm25(x) { mode_radius = 2 }")
    reward = dtg.loads(text).models[-1].reward
    assert reward.mode_radius == 2.0 and len(reward.modes) == 25
    with pytest.raises(dtg.DtgError, match=r"built-in target 'gmm25', whose log Z is known"):
        dtg.loads(text.replace("mode_radius = 2", "log_z = 0"))


# ------------------------------------------------------------------ refusals, located


@pytest.mark.parametrize(
    "options,message,pointed",
    [
        (
            " { log_z = log(0) }",
            "option 'log_z' must be a finite number, got log(0) = -inf",
            "log(0)",
        ),
        (" { log_z = 1e308 * 10 }", "must be a finite number, got 1e308 * 10 = inf", "1e308"),
        (" { log_z = [1, 2] }", "option 'log_z' must be a number, got [1, 2]", "[1, 2]"),
        (' { log_z = "1" }', "option 'log_z' must be a number", '"1"'),
        (
            " { modes = [[0, 0, 1]] }",
            "mode 1 must be a point of the space real[2] (a list of 2 numbers), got 3 entries",
            "[0, 0, 1]",
        ),
        (" { modes = [[0, 0], 1] }", "mode 2 must be a point of the space", "1"),
        (" { modes = [0, 0] }", "mode 1 must be a point", "0, 0]"),
        (" { modes = [] }", "option 'modes' must be a non-empty list of points", "[]"),
        (" { modes = [[1, 2], [1, 2]] }", "modes 1 and 2 are the same point", "[1, 2]"),
        (" { modes = [[1, 2]], mode_radius = 0 }", "'mode_radius' must be positive", "0"),
        (" { mode_radius = 1 }", "declares 'mode_radius' but no modes", "mode_radius"),
        (" { logz = 1 }", "has no option 'logz'", "logz"),
        (" { log_z = 1, log_z = 2 }", "option 'log_z' given twice", "log_z = 2"),
    ],
)
def test_bad_options_are_refused_with_a_location(options: str, message: str, pointed: str) -> None:
    with pytest.raises(dtg.DtgError) as info:
        sampler(options=options)
    error = info.value
    assert message in error.message
    line = SAMPLER.format(dim=2, steps=4, target_var=1.0, gen_var=1.0, options=options)
    line = line.splitlines()[4]
    assert line.startswith("  reward logr(x)")
    where = (error.span.file, error.span.line, error.span.column)
    assert where == ("gauss.dtg", 5, line.rindex(pointed) + 1)


def test_options_round_trip_through_the_printer_and_fmt() -> None:
    from dtg.fmt import format_source
    from dtg.syntax import parse
    from dtg.syntax.printer import to_source

    source = SAMPLER.format(
        dim=2, steps=4, target_var=1, gen_var=1, options=" {log_z=log(2*pi) modes=[[0,0]]}"
    )
    printed = to_source(parse(source))
    assert "reward logr(x) = -0.5 * sum(x^2) / 1 { log_z = log(2 * pi), modes = [[0, 0]] }" in (
        printed
    )
    assert "{ log_z = log(2*pi), modes = [[0, 0]] }" in format_source(source)
    assert parse(printed) == parse(source)
    assert dtg.loads(printed).models[-1].reward.log_z == pytest.approx(math.log(2 * math.pi))


def test_w2_and_eubo_only_with_exact_samples(one_thread) -> None:
    # gmm25 has exact samples: eval adds the EUBO and W2 (numbers are the trained chain's own;
    # here the sampler is untrained, only the keys and the bound's direction are checked).
    text = SAMPLER.format(dim=2, steps=4, target_var=1, gen_var=25, options="")
    text = text.replace("-0.5 * sum(x^2) / 1", "gmm25(x)")
    metrics = evaluate(dtg.loads(text).compile("cpu"), n=200)
    assert {"eubo", "w2", "log_z", "mode_coverage"} <= set(metrics)
    assert metrics["log_z_elbo"] <= 0.0 <= metrics["eubo"]  # ELBO ≤ log Z = 0 ≤ EUBO
    assert np.isfinite(metrics["w2"])


def test_modes_of_a_matrix_space_and_of_a_scalar_space() -> None:
    square = sampler(dim="2, 2", options=" { modes = [[[0, 1], [2, 3]], [[0, 0], [0, 0]]] }")
    assert square.models[-1].reward.modes == ((0.0, 1.0, 2.0, 3.0), (0.0, 0.0, 0.0, 0.0))
    assert square.models[-1].reward.mode_radius == pytest.approx(math.sqrt(14) / 2)
    with pytest.raises(dtg.DtgError, match=r"real\[2, 2\] \(a list of 2 lists of 2 numbers\)"):
        sampler(dim="2, 2", options=" { modes = [[0, 1], [2, 3]] }")
    scalar = SAMPLER.format(dim=1, steps=4, target_var=1, gen_var=1, options=" { modes = [-1, 1] }")
    scalar = scalar.replace("real[1]", "real")
    assert dtg.loads(scalar).models[-1].reward.modes == ((-1.0,), (1.0,))


def test_a_data_models_reward_may_not_declare_a_target() -> None:
    """Only a sampler's reward describes the distribution it samples; a fine-tuning reward
    (a data model, e.g. RTB toward even digits) has no log Z of its own to declare."""
    text = (EXAMPLES / "rtb_even_digits.dtg").read_text()
    assert "classes = [0, 2, 4, 6, 8])" in text
    text = text.replace("classes = [0, 2, 4, 6, 8])", "classes = [0, 2, 4, 6, 8]) { log_z = 0 }")
    with pytest.raises(dtg.DtgError, match="only a sampler's reward"):
        dtg.loads(text, file=str(EXAMPLES / "rtb_even_digits.dtg"))


def test_a_mode_is_covered_by_one_percent_of_the_samples() -> None:
    modes = [[0.0, 0.0], [5.0, 5.0]]
    far = torch.full((196, 2), -20.0)
    held = torch.tensor([[0.1, 0.0], [0.0, 0.1], [-0.1, 0.0], [5.0, 5.1]])  # 3 at A, 1 at B
    samples = torch.cat([far, held])  # 200 samples: A holds 1.5 %, B 0.5 %
    assert mode_coverage(samples, modes, 1.0) == (pytest.approx(0.5), 1)
    assert mode_coverage(samples, modes, 1.0, share=0.0) == (1.0, 2)
    assert mode_coverage(samples, modes, 1.0, share=0.02) == (0.0, 0)


def test_well_sign_errors_against_the_exact_share() -> None:
    a = np.linspace(-6, 6, 1_200_001)
    density = np.exp(-(a**4) + 6 * a**2 + 0.5 * a - 60)
    exact = density[a > 0].sum() / density.sum()  # P(a > 0) by a Riemann sum
    samples = -torch.ones(100, 32)
    positives = [(7 * i) % 100 for i in range(16)]  # well i: this many of 100 samples positive
    for well, count in enumerate(positives):
        samples[:count, 2 * well] = 1.0
    errors = np.abs(np.array(positives) / 100 - exact)
    worst, mean = well_sign_errors(samples)
    assert worst == pytest.approx(errors.max(), abs=1e-6)
    assert mean == pytest.approx(errors.mean(), abs=1e-6)

"""Per-coordinate (diagonal) linear-Gaussian destruction (issue 19): ``Normal([0.9, 0.8] *
x[t-1], 0.3)`` and a vector std work wherever a scalar kernel does.

References written out here: the geometric-series marginal of a constant-coefficient chain, DDPM's
closed forms per coordinate (numpy cumprod), a Monte-Carlo regression of x[t-1] on x[t] for the
posterior, the DDPM ELBO terms per coordinate by a hand loop, E[x[0] | x[t]] for Gaussian data.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from pyro import poutine

import dtg
from dtg.backends.pyro_source import emit_pyro
from dtg.channels.base import level_tensor
from dtg.ir import Family
from dtg.objectives.denoising import level_terms
from dtg.render.equations import equations
from dtg.runtime.loop import train

CONSTANT = """
model diag_constant {
  data x : real[2] ~ moons(noise = 0.05)
  steps T = 10
  net eps : (real[2], time) -> real[2] = mlp(hidden = [16])
  destroy  x[t]   ~ Normal([0.9, 0.8] * x[t-1], [0.3, 0.1])
  generate x[T]   ~ Normal(0, 1)
  generate x[t-1] ~ Guess(x[t], eps)
  objective denoising(weight = elbo)
}
"""

STEPS = 20
SCHEDULED = """
model diag_scheduled {
  data x : real[2] ~ moons(noise = 0.05)
  steps T = STEPS
  schedule b(t) = LOW + HIGH * (t - 1) / (T - 1)
  net eps : (real[2], time) -> real[2] = mlp(hidden = [16])
  destroy  x[t]   ~ Normal(sqrt(1 - b(t) * [1, 2]) * x[t-1], sqrt(b(t) * [1, 2]))
  generate x[T]   ~ Normal(0, 1)
  generate x[t-1] ~ Guess(x[t], eps, predict = PREDICT)
  objective denoising(weight = WEIGHT)
}
"""


def scheduled(
    predict: str = "epsilon", weight: str = "elbo", steps: int = STEPS, b=(0.01, 0.1)
) -> str:
    """b(t) runs from b[0] to b[0] + b[1]; coordinate i uses b(t)·[1, 2][i]."""
    text = SCHEDULED.replace("PREDICT", predict).replace("WEIGHT", weight)
    text = text.replace("LOW", str(b[0])).replace("HIGH", str(b[1]))
    return text.replace("STEPS", str(steps))


def hand_ddpm() -> tuple[np.ndarray, ...]:
    """Per-coordinate DDPM quantities ``[T, 2]`` (row k is level k + 1)."""
    b = 0.01 + 0.1 * np.arange(STEPS) / (STEPS - 1)
    betas = b[:, None] * np.array([1.0, 2.0])
    alphas = 1 - betas
    abar = np.cumprod(alphas, axis=0)
    abar_prev = np.concatenate([np.ones((1, 2)), abar[:-1]])
    return betas, alphas, abar, abar_prev


@pytest.fixture(autouse=True)
def _threads(one_thread):
    yield


def test_constant_coefficients_match_the_geometric_closed_form() -> None:
    ir = dtg.loads(CONSTANT).model()
    assert ir.destroy.family is Family.LINEAR_GAUSSIAN
    a, s = np.array([0.9, 0.8]), np.array([0.3, 0.1])
    t = np.arange(11)[:, None]
    np.testing.assert_allclose(ir.marginals["mean"], a**t, rtol=0, atol=1e-14)
    var = s**2 * (1 - a ** (2 * t)) / (1 - a**2)
    np.testing.assert_allclose(ir.marginals["var"], var, rtol=0, atol=1e-14)


def test_per_coordinate_schedules_match_ddpm_per_coordinate() -> None:
    ir = dtg.loads(scheduled()).model()
    betas, alphas, abar, abar_prev = hand_ddpm()
    expected = {
        "mean": np.sqrt(abar),
        "var": 1 - abar,
        "beta": betas,
        "post_x0": betas * np.sqrt(abar_prev) / (1 - abar),
        "post_xt": (1 - abar_prev) * np.sqrt(alphas) / (1 - abar),
        "post_var": betas * (1 - abar_prev) / (1 - abar),
    }
    for name, values in expected.items():
        got = ir.marginals[name][1:]
        np.testing.assert_allclose(got, values, rtol=0, atol=1e-12, err_msg=name)


def test_posterior_matches_monte_carlo_regression() -> None:
    """q(x[t-1] | x[t], x[0]) from chains drawn step by step: regress x[t-1] on x[t]."""
    model = dtg.loads(CONSTANT).compile("cpu").double()
    n, level, x0 = 200_000, 5, torch.tensor([1.5, -2.0], dtype=torch.float64)
    generator = torch.Generator().manual_seed(0)
    x = x0.expand(n, 2)
    for t in range(1, level + 1):
        previous = x
        x = model.destroy.sample(x, level_tensor(t, n, model.device), generator=generator)
    m = model.ir.marginals
    for i in range(2):
        design = torch.stack([torch.ones(n, dtype=torch.float64), x[:, i]], dim=1)
        coef = torch.linalg.lstsq(design, previous[:, i : i + 1]).solution.flatten()
        residual = previous[:, i] - design @ coef
        assert float(coef[1]) == pytest.approx(m["post_xt"][level, i], abs=0.01)
        assert float(coef[0]) == pytest.approx(m["post_x0"][level, i] * float(x0[i]), abs=0.02)
        assert float(residual.var()) == pytest.approx(m["post_var"][level, i], rel=0.02)


def test_uniform_vectors_are_the_scalar_kernel_and_mixing_is_not_linear() -> None:
    same = dtg.loads(CONSTANT.replace("[0.9, 0.8]", "[0.5, 0.5]").replace("[0.3, 0.1]", "0.3"))
    scalar = dtg.loads(CONSTANT.replace("[0.9, 0.8]", "0.5").replace("[0.3, 0.1]", "0.3"))
    for name in ("a", "s"):
        assert same.model().destroy.tables[name].shape == (11,)
        assert np.array_equal(
            same.model().destroy.tables[name], scalar.model().destroy.tables[name], equal_nan=True
        )
    swapped = CONSTANT.replace("[0.9, 0.8] * x[t-1]", "[x[t-1][1], x[t-1][0]]")
    swapped = swapped.replace("Guess(x[t], eps)", "Normal(eps(x[t], t), 1)")
    swapped = swapped.replace("denoising(weight = elbo)", "elbo")
    assert dtg.loads(swapped).model().destroy.family is Family.NORMAL


def test_elbo_terms_match_a_hand_written_per_coordinate_loop() -> None:
    torch.manual_seed(0)
    model = dtg.loads(scheduled()).compile("cpu").double()
    betas, alphas, abar, abar_prev = (torch.tensor(v) for v in hand_ddpm())
    x0 = torch.randn(48, 2, dtype=torch.float64)
    t = torch.randint(1, STEPS + 1, (48,))
    noise = torch.randn(48, 2, dtype=torch.float64)
    got = level_terms(model.destroy, model.generate, x0, t, noise)
    net = model.nets["eps"]
    expected = []
    for i in range(48):
        k = int(t[i]) - 1
        xt = abar[k].sqrt() * x0[i] + (1 - abar[k]).sqrt() * noise[i]
        eps = net(xt[None], torch.tensor([(k + 1) / STEPS], dtype=torch.float64))[0]
        mean_p = (xt - betas[k] / (1 - abar[k]).sqrt() * eps) / alphas[k].sqrt()
        if k == 0:
            var = betas[0]
            nll = 0.5 * torch.log(2 * math.pi * var) + (x0[i] - mean_p) ** 2 / (2 * var)
            expected.append(float(nll.sum().detach()))
            continue
        var_q = betas[k] * (1 - abar_prev[k]) / (1 - abar[k])
        mean_q = (betas[k] * abar_prev[k].sqrt() / (1 - abar[k])) * x0[i] + (
            (1 - abar_prev[k]) * alphas[k].sqrt() / (1 - abar[k])
        ) * xt
        expected.append(float((0.5 * (mean_q - mean_p) ** 2 / var_q).sum().detach()))
    np.testing.assert_allclose(got.detach().numpy(), expected, rtol=1e-6, atol=1e-6)
    # The prior term KL(q(x[T] | x[0]) ‖ N(0, 1)) per coordinate.
    m, v = abar[-1].sqrt(), 1 - abar[-1]
    hand = 0.5 * (-torch.log(v) + v + (m * x0) ** 2 - 1).sum(dim=1)
    assert torch.allclose(model.objective.prior_kl(x0), hand, atol=1e-10)


@pytest.mark.parametrize("weight", ["simple", "min_snr"])
def test_mse_losses_match_a_hand_written_loop(weight) -> None:
    model = dtg.loads(scheduled(predict="v_prediction", weight=weight)).compile("cpu")
    x0 = torch.randn(64, 2)
    torch.manual_seed(3)
    loss = model.loss(x0)
    torch.manual_seed(3)
    t = torch.randint(1, STEPS + 1, (64,))
    noise = torch.randn_like(x0)
    _, _, abar, _ = (torch.tensor(v, dtype=torch.float32) for v in hand_ddpm())
    m, sigma = abar[t - 1].sqrt(), (1 - abar[t - 1]).sqrt()  # [64, 2]
    xt = m * x0 + sigma * noise
    error = (model.nets["eps"](xt, t.float() / STEPS) - (m * noise - sigma * x0)) ** 2
    if weight == "min_snr":
        snr = m**2 / sigma**2
        error = error * torch.clamp(snr, max=5.0) / (snr + 1)
    assert torch.allclose(loss, error.mean(), rtol=1e-5, atol=1e-6)


def _oracle_samples(text: str, mu: torch.Tensor, sd: torch.Tensor) -> torch.Tensor:
    """Ancestral samples with x̂[0] = E[x[0] | x[t]] for x[0] ~ N(μ, diag σ²) (seed 0)."""
    model = dtg.loads(text).compile("cpu").double()
    mean, var = (torch.tensor(model.ir.marginals[k]) for k in ("mean", "var"))

    def oracle(xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        m, v = mean[t], var[t]
        m, v = (m[:, None], v[:, None]) if m.dim() == 1 else (m, v)
        return mu + sd**2 * m * (xt - m * mu) / (m**2 * sd**2 + v)

    model.generate.net = oracle
    torch.manual_seed(0)
    return model.sample(20000)


def test_optimal_predictor_samples_the_gaussian_data_per_coordinate() -> None:
    """With the optimal x̂[0], ancestral sampling returns N(μ, diag σ²); and each coordinate is
    the scalar chain with that coordinate's schedule (the same draws)."""
    mu = torch.tensor([0.5, -1.0], dtype=torch.float64)
    sd = torch.tensor([0.7, 0.5], dtype=torch.float64)
    # 200 small steps destroy the data (m_T² ≈ 0.006, 4e-5), as the N(0, 1) start assumes.
    text = scheduled(predict="sample", steps=200, b=(0.001, 0.05))
    samples = _oracle_samples(text, mu, sd)
    assert torch.allclose(samples.mean(0), mu, atol=0.03)
    assert torch.allclose(samples.std(0), sd, rtol=0.05)
    for i, factor in enumerate(("b(t)", "2 * b(t)")):
        scalar = _oracle_samples(text.replace("b(t) * [1, 2]", factor), mu, sd)
        assert torch.allclose(samples[:, i], scalar[:, i], atol=1e-9)


def test_pyro_sites_score_like_the_channels_and_the_emitted_source_agrees(tmp_path) -> None:
    torch.manual_seed(5)
    model = dtg.loads(scheduled(predict="v_prediction")).compile("cpu")
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.3)
    x = model.dataset().train[:16]
    model_fn, guide_fn = model.pyro()
    guide = poutine.trace(guide_fn).get_trace(x)
    trace = poutine.trace(poutine.replay(model_fn, trace=guide)).get_trace(x)
    for t in range(1, STEPS + 1):
        level = level_tensor(t, 16, model.device)
        new = guide.nodes[f"x_{t}"]["value"]
        old = guide.nodes[f"x_{t - 1}"]["value"] if t > 1 else x
        ours = guide.nodes[f"x_{t}"]["fn"].log_prob(new)
        assert torch.allclose(ours, model.destroy.log_prob(new, old, level), atol=1e-4)
        ours = trace.nodes[f"x_{t - 1}"]["fn"].log_prob(old)
        assert torch.allclose(ours, model.generate.log_prob(old, new, level), atol=1e-4)
    path = tmp_path / "emitted_diag.py"
    path.write_text(emit_pyro(model.ir))
    namespace: dict = {}
    exec(compile(path.read_text(), str(path), "exec"), namespace)  # noqa: S102 - our own output
    namespace["load_weights"](model.state_dict())
    other_guide = poutine.trace(poutine.replay(namespace["guide"], trace=guide)).get_trace(x)
    other = poutine.trace(poutine.replay(namespace["model"], trace=guide)).get_trace(x)
    for ours, theirs in ((trace, other), (guide, other_guide)):
        a, b = float(ours.log_prob_sum().detach()), float(theirs.log_prob_sum().detach())
        assert abs(a - b) <= 1e-4 * max(1.0, abs(a)), (a, b)


def test_latex_shows_vectors_and_a_diagonal_covariance() -> None:
    text = equations(dtg.loads(scheduled()).model())
    assert r"\begin{pmatrix} 1 \\ 2 \end{pmatrix}" in text
    assert r"\operatorname{diag}" in text and "vector" not in text


def test_trains_through_the_loop(tmp_path) -> None:
    for i, text in enumerate((CONSTANT, scheduled(weight="min_snr"))):
        torch.manual_seed(0)
        run = train(dtg.loads(text).compile("cpu"), steps=2, batch=8, out=tmp_path / f"run{i}")
        assert len(run.losses) == 2 and all(math.isfinite(v) for v in run.losses)


def test_emit_ir_shows_per_coordinate_tables() -> None:
    from dtg.ir.dump import dump_ir

    dump = dump_ir(dtg.loads(CONSTANT).model())
    assert "table a: [[nan, nan], [0.9, 0.8], [0.9, 0.8]," in dump
    assert "marginal mean: [[1, 1], [0.9, 0.8], [0.81, 0.64], [0.729, 0.512]," in dump

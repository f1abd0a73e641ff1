"""The denoising objective and Gaussian Guess against independent references.

References written out here: the DDPM ELBO terms (Ho et al. 2020, eqs. 5-7), the ε-MSE, and the
closed-form optimal ε-predictor for Gaussian data (E[ε | x_t] for jointly Gaussian x_0, ε).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import tolerance

import dtg

T = 20


def program(
    tmp_path,
    weight: str = "elbo",
    predict: str = "epsilon",
    steps: int = T,
    mu=(0.5, -1.0),
    sigma: float = 0.7,
    n: int = 4000,
):
    rng = np.random.default_rng(0)
    data = (np.asarray(mu) + sigma * rng.standard_normal((n, 2))).astype(np.float32)
    np.save(tmp_path / "gauss.npy", data)
    text = f"""
    model g {{
      data x : real[2] ~ file("gauss.npy")
      steps T = {steps}
      schedule beta(t) = 1e-3 + (0.2 - 1e-3) * (t - 1) / (T - 1)
      net eps : (real[2], time) -> real[2] = mlp(hidden = [16, 16])
      destroy x[t] ~ Normal(sqrt(1 - beta(t)) * x[t-1], sqrt(beta(t)))
      generate x[T] ~ Normal(0, 1)
      generate x[t-1] ~ Guess(x[t], eps, predict = {predict})
      objective denoising(weight = {weight})
    }}"""
    path = tmp_path / "g.dtg"
    path.write_text(text)
    return dtg.load(path)


def hand_ddpm(steps: int):
    betas = 1e-3 + (0.2 - 1e-3) * np.arange(steps) / (steps - 1)
    alphas = 1 - betas
    abar = np.cumprod(alphas)
    abar_prev = np.concatenate([[1.0], abar[:-1]])
    return betas, alphas, abar, abar_prev


@pytest.mark.device
def test_elbo_loss_matches_hand_written_ddpm_elbo(tmp_path, device) -> None:
    torch.manual_seed(0)
    model = program(tmp_path).compile(device).double()
    betas, alphas, abar, abar_prev = hand_ddpm(T)
    x0 = torch.randn(64, 2, dtype=torch.float64).to(device)
    t = torch.randint(1, T + 1, (64,)).to(device)
    noise = torch.randn(64, 2, dtype=torch.float64).to(device)
    from dtg.objectives.denoising import level_terms

    got = level_terms(model.destroy, model.generate, x0, t, noise)
    # The hand-written reference: DDPM's posterior, the ε-parameterised mean, Gaussian KL.
    net = model.nets["eps"]
    expected = []
    for i in range(64):
        k = int(t[i]) - 1  # 0-based index of level t
        xt = math.sqrt(abar[k]) * x0[i] + math.sqrt(1 - abar[k]) * noise[i]
        eps = net(xt[None], torch.tensor([(k + 1) / T], dtype=torch.float64, device=device))[0]
        mean_p = (xt - betas[k] / math.sqrt(1 - abar[k]) * eps) / math.sqrt(alphas[k])
        if k == 0:
            var = betas[0]
            nll = 0.5 * math.log(2 * math.pi * var) + (x0[i] - mean_p) ** 2 / (2 * var)
            expected.append(float(nll.sum().detach()))
            continue
        var_q = betas[k] * (1 - abar_prev[k]) / (1 - abar[k])
        mean_q = (betas[k] * math.sqrt(abar_prev[k]) / (1 - abar[k])) * x0[i] + (
            (1 - abar_prev[k]) * math.sqrt(alphas[k]) / (1 - abar[k])
        ) * xt
        kl = 0.5 * ((mean_q - mean_p) ** 2 / var_q)  # equal variances: only the mean term
        expected.append(float(kl.sum().detach()))
    np.testing.assert_allclose(got.detach().cpu().numpy(), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.device
def test_simple_loss_is_epsilon_mse(tmp_path, device) -> None:
    model = program(tmp_path, weight="simple").compile(device)
    x0 = torch.randn(128, 2).to(device)
    torch.manual_seed(3)
    loss = model.loss(x0)
    torch.manual_seed(3)  # the same draws, on the same device's generator, by hand
    t = torch.randint(1, T + 1, (128,), device=device)
    noise = torch.randn_like(x0)
    _, _, abar, _ = hand_ddpm(T)
    abar_t = torch.tensor(abar, dtype=torch.float32, device=device)[t - 1][:, None]
    xt = abar_t.sqrt() * x0 + (1 - abar_t).sqrt() * noise
    eps = model.nets["eps"](xt, t.float() / T)
    # float32: CUDA's mean sums the 256 squares in another order than the objective's
    atol = tolerance(device, cpu=1e-6, cuda=1e-5)
    assert torch.allclose(loss, ((eps - noise) ** 2).mean(), atol=atol)


@pytest.mark.device
def test_prediction_types_agree_on_x0(tmp_path, device) -> None:
    model = program(tmp_path).compile(device).double()
    destroy = model.destroy
    x0 = torch.randn(32, 2, dtype=torch.float64).to(device)
    noise = torch.randn(32, 2, dtype=torch.float64).to(device)
    t = torch.randint(1, T + 1, (32,)).to(device)
    xt = destroy.marginal(x0, t, noise)
    for predict in ("epsilon", "sample", "v_prediction"):
        target = destroy.target(x0, noise, t, predict)
        recovered = destroy.predict_x0(xt, target, t, predict)
        assert torch.allclose(recovered, x0, atol=1e-9), predict


def optimal_epsilon(model, mu: torch.Tensor, sigma: float):
    """E[ε | x_t] for x_0 ~ N(μ, σ²I): √v_t (x_t − m_t μ) / (m_t² σ² + v_t)."""
    destroy = model.destroy

    def net(xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        m = destroy.mean[t][:, None].double()
        v = destroy.var[t][:, None].double()
        return (v.sqrt() * (xt - m * mu) / (m**2 * sigma**2 + v)).to(xt.dtype)

    return net


@pytest.mark.device
def test_optimal_predictor_reproduces_gaussian_data_and_analytic_elbo(tmp_path, device) -> None:
    steps, sigma = 200, 0.7
    mu = torch.tensor([0.5, -1.0], dtype=torch.float64, device=device)
    model = program(tmp_path, steps=steps).compile(device).double()
    model.generate.net = optimal_epsilon(model, mu, sigma)
    torch.manual_seed(0)
    samples = model.sample(20000)
    # 0.03 is 6 standard errors of the mean (0.7 / √20000), 0.05 · 0.7 ten of the std
    assert torch.allclose(samples.mean(0), mu, atol=0.03)
    sigmas = torch.full((2,), sigma, dtype=torch.float64, device=device)
    assert torch.allclose(samples.std(0), sigmas, rtol=0.05)

    # Analytic expected negative ELBO with the optimal predictor (per dimension, then ×2).
    tables = model.ir.marginals
    m, v = tables["mean"], tables["var"]
    cond = sigma**2 * v / (m**2 * sigma**2 + v)  # Var(x_0 | x_t)
    kl = sum(
        tables["post_x0"][k] ** 2 * cond[k] / (2 * tables["post_var"][k])
        for k in range(2, steps + 1)
    )
    beta1 = tables["beta"][1]
    decoder = 0.5 * math.log(2 * math.pi * beta1) + cond[1] / (2 * beta1)
    prior = 0.5 * (
        -math.log(v[steps])
        + v[steps]
        + m[steps] ** 2 * (sigma**2 + float(mu[0] ** 2 + mu[1] ** 2) / 2)
        - 1
    )
    analytic = 2 * (kl + decoder) + 2 * prior
    x0 = mu + sigma * torch.randn(4000, 2, dtype=torch.float64).to(device)
    estimates = model.nelbo(x0)
    error = 4 * estimates.std().item() / math.sqrt(len(estimates))
    assert abs(estimates.mean().item() - analytic) < error, (estimates.mean().item(), analytic)
    # The ELBO bounds the exact negative log-likelihood from above.
    exact_nll = 2 * (0.5 * math.log(2 * math.pi * sigma**2) + 0.5)
    assert analytic > exact_nll


@pytest.mark.device
def test_importance_sampling_weights_are_unbiased(tmp_path, device) -> None:
    model = program(tmp_path, weight="elbo").compile(device)
    objective = model.objective
    objective.sampling = "importance"
    objective.history_count.fill_(10)
    objective.history.copy_(torch.rand_like(objective.history) + 0.1)
    t, weights = objective.sample_levels(200000, device)
    assert t.device == weights.device == objective.history.device
    # E_p[w · f(t)] = mean over levels of f: check with f(t) = t.
    estimate = (weights * t.float()).mean().item()
    assert estimate == pytest.approx((T + 1) / 2, rel=0.02)


@pytest.mark.device
def test_importance_history_keeps_the_last_losses_in_batch_order(tmp_path, device) -> None:
    """The grouped update equals appending example by example (a hand-written loop); on CUDA
    too, where the grouping's sort must stay stable."""
    objective = program(tmp_path, weight="elbo").compile(device).objective
    history = [[] for _ in range(T + 1)]
    generator = torch.Generator().manual_seed(0)
    for size in (7, 40, 3, 64, 1):
        t = torch.randint(1, T + 1, (size,), generator=generator)
        losses = torch.rand(size, generator=generator)
        objective._remember(t.to(device), losses.to(device))
        for level, loss in zip(t.tolist(), losses.tolist(), strict=True):
            history[level] = (history[level] + [loss])[-objective.history.shape[1] :]
    for level in range(T + 1):
        count = int(objective.history_count[level])
        assert count == len(history[level])
        assert objective.history[level, :count].tolist() == pytest.approx(history[level])

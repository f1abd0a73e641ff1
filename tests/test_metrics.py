"""Evaluation metrics against independent references (closed forms, sorting, scipy)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from scipy.stats import wasserstein_distance

from dtg.runtime.evaluate import bits_per_dim, evaluate, mmd_rbf, sliced_wasserstein


def normal(n: int, d: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed)) + shift


def test_mmd_identical_and_same_law_near_zero() -> None:
    x = normal(500, 2, 0)
    assert abs(mmd_rbf(x, x.clone())) < 5e-3  # unbiased: tiny, not exactly 0
    assert abs(mmd_rbf(x, normal(500, 2, 1))) < 0.01


def test_mmd_separates_shifted_laws() -> None:
    far = mmd_rbf(normal(400, 1, 0), normal(400, 1, 1, shift=3.0))
    near = mmd_rbf(normal(400, 1, 0), normal(400, 1, 1, shift=0.3))
    assert far > 0.5 and far > 10 * near


def test_mmd_matches_a_direct_numpy_sum() -> None:
    rng = np.random.default_rng(0)
    x, y, sigma = rng.normal(size=(30, 2)), rng.normal(1.0, size=(20, 2)), 0.7

    def k(a, b):
        return np.exp(-((a[:, None] - b[None]) ** 2).sum(-1) / (2 * sigma**2))

    kxx, kyy = k(x, x), k(y, y)
    expected = (kxx.sum() - np.trace(kxx)) / (30 * 29) + (kyy.sum() - np.trace(kyy)) / (20 * 19)
    expected -= 2 * k(x, y).mean()
    got = mmd_rbf(torch.tensor(x), torch.tensor(y), bandwidth=sigma)
    assert got == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("p", [1.0, 2.0])
def test_sliced_wasserstein_1d_shift_is_the_shift(p: float) -> None:
    x = normal(1000, 1, 0)
    assert sliced_wasserstein(x, x + 2.5, projections=8, p=p) == pytest.approx(2.5, rel=1e-9)
    # independent samples: the 1-D closed form (sort both and compare) …
    y = normal(1000, 1, 1, shift=2.5)
    reference = np.mean(np.abs(np.sort(x[:, 0].numpy()) - np.sort(y[:, 0].numpy())) ** p) ** (1 / p)
    assert sliced_wasserstein(x, y, projections=8, p=p) == pytest.approx(reference, rel=1e-6)
    assert reference == pytest.approx(2.5, abs=0.15)


def test_sliced_wasserstein_unequal_sizes_matches_scipy() -> None:
    x, y = normal(300, 1, 0), normal(170, 1, 1, shift=1.0)
    expected = wasserstein_distance(x[:, 0].numpy(), y[:, 0].numpy())
    assert sliced_wasserstein(x, y, projections=4, p=1.0) == pytest.approx(expected, rel=1e-9)


def test_sliced_wasserstein_2d_shift() -> None:
    # shifting by s along one axis: W2 along θ is |s θ₁|, and E θ₁² = 1/2 on the circle
    x, s = normal(500, 2, 0), 2.0
    y = x + torch.tensor([s, 0.0])
    g = torch.Generator().manual_seed(0)
    got = sliced_wasserstein(x, y, projections=4000, generator=g)
    assert got == pytest.approx(s / math.sqrt(2), rel=0.03)
    assert sliced_wasserstein(x, x) == pytest.approx(0.0, abs=1e-12)


def test_bits_per_dim() -> None:
    assert bits_per_dim(64 * math.log(2), 64) == pytest.approx(1.0)
    assert bits_per_dim(10.0, 2) == pytest.approx(10.0 / (2 * math.log(2)))
    assert torch.allclose(bits_per_dim(torch.tensor([math.log(2)]), 1), torch.tensor([1.0]))


def test_evaluate_on_an_exact_gaussian_model() -> None:
    from test_runtime import GaussModel

    model = GaussModel()
    with torch.no_grad():  # the data law exactly: N(2, 0.5²) in each coordinate
        model.mu.fill_(2.0)
        model.log_sigma.fill_(math.log(0.5))
    report = evaluate(model, n=200, seed=0)
    entropy = 2 * (0.5 * math.log(2 * math.pi * math.e) + math.log(0.5))
    assert report["nelbo_nats"] == pytest.approx(entropy, abs=0.15)
    assert report["bits_per_dim"] == pytest.approx(report["nelbo_nats"] / (2 * math.log(2)))
    assert abs(report["mmd"]) < 0.02 and report["sliced_w"] < 0.15
    assert report["test_examples"] == 200.0 and model.training


def test_evaluate_reports_no_elbo_when_the_objective_has_none() -> None:
    from test_runtime import GaussModel

    from dtg.errors import DtgRuntimeError

    model = GaussModel(dims=3)

    def no_elbo(batch):
        raise DtgRuntimeError("objective tb has no ELBO to report")

    model.nelbo = no_elbo
    model.ir.message.space = SimpleNamespace(kind="real", shape=(3,), vocab=None)
    report = evaluate(model, n=50)
    assert "nelbo_nats" not in report and "mmd" not in report

"""Tests for dtg.targets: densities against independent formulas, log Z, exact samplers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats

import dtg.targets
from dtg.targets import MANYWELL_LOG_Z, TARGETS, Target, TargetError, get_target
from dtg.targets.densities import DENSITIES


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------------------------------
# registry


def test_registry_and_dims() -> None:
    assert set(TARGETS) == {"gmm25", "funnel", "manywell"}
    dims = {"gmm25": 2, "funnel": 10, "manywell": 32}
    for name, d in dims.items():
        t = get_target(name)
        assert isinstance(t, Target) and t.name == name and t.dim == d


def test_registry_and_densities_name_the_same_targets() -> None:
    """The torch-free registry and the torch densities agree; the registry is read-only."""
    assert set(DENSITIES) == set(TARGETS)
    for name, target in TARGETS.items():
        assert target.log_z == DENSITIES[name].log_z
        x = torch.zeros(2, target.dim, dtype=torch.float64)
        torch.testing.assert_close(target.log_reward(x), DENSITIES[name].log_reward(x))
    with pytest.raises(TypeError):
        TARGETS["mine"] = TARGETS["gmm25"]  # type: ignore[index]
    assert dtg.targets.gmm25_log_reward is DENSITIES["gmm25"].log_reward
    with pytest.raises(AttributeError, match="no attribute 'gmm52_log_reward'"):
        _ = dtg.targets.gmm52_log_reward


def test_unknown_target_suggests() -> None:
    with pytest.raises(TargetError) as info:
        get_target("gmm52")
    assert isinstance(info.value, KeyError)
    assert "gmm52" in str(info.value) and "gmm25" in str(info.value)
    assert info.value.hint == "did you mean 'gmm25'?"


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_shapes_dtype_and_batching(name: str) -> None:
    t = get_target(name)
    x = t.sample(7, _gen())
    assert x.shape == (7, t.dim) and x.dtype == torch.float32
    lr = t.log_reward(x)
    assert lr.shape == (7,) and lr.dtype == torch.float32 and torch.isfinite(lr).all()
    # float64 in, float64 out; arbitrary leading batch dims
    x64 = t.sample(12, _gen(1), dtype=torch.float64).reshape(3, 4, t.dim)
    lr64 = t.log_reward(x64)
    assert lr64.shape == (3, 4) and lr64.dtype == torch.float64
    torch.testing.assert_close(lr64.reshape(12), t.log_reward(x64.reshape(12, t.dim)))
    # deterministic given the generator
    torch.testing.assert_close(t.sample(5, _gen(3)), t.sample(5, _gen(3)))
    assert not torch.equal(t.sample(5, _gen(3)), t.sample(5, _gen(4)))
    with pytest.raises(ValueError):
        t.log_reward(torch.zeros(3, t.dim + 1))


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_stable_far_from_mass(name: str) -> None:
    t = get_target(name)
    x = torch.full((2, t.dim), 40.0, dtype=torch.float64)
    x[1] = -40.0
    assert torch.isfinite(t.log_reward(x)).all()


# --------------------------------------------------------------------------------------------
# gmm25


def _gmm25_scipy(x: np.ndarray) -> np.ndarray:
    grid = [-10.0, -5.0, 0.0, 5.0, 10.0]
    comps = [
        stats.multivariate_normal(mean=[a, b], cov=0.3 * np.eye(2)).logpdf(x)
        for a in grid
        for b in grid
    ]
    return np.logaddexp.reduce(np.stack(comps), axis=0) - math.log(25)


def test_gmm25_density_matches_scipy() -> None:
    x = np.random.default_rng(0).uniform(-13, 13, (500, 2))
    got = get_target("gmm25").log_reward(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, _gmm25_scipy(x), rtol=1e-10, atol=1e-10)


def test_gmm25_log_z_by_grid_integration() -> None:
    t = get_target("gmm25")
    # a Riemann sum of a smooth, rapidly decaying integrand is accurate far below h^2 here
    h = 0.05
    g = torch.arange(-14.0, 14.0 + h / 2, h, dtype=torch.float64)
    xy = torch.cartesian_prod(g, g)
    z = torch.exp(t.log_reward(xy)).sum().item() * h * h
    assert t.log_z == 0.0
    assert abs(math.log(z) - t.log_z) < 1e-6


def test_gmm25_sampler_moments_and_modes() -> None:
    t = get_target("gmm25")
    x = t.sample(50_000, _gen(5)).double()
    # mean 0, variance per coordinate = Var(uniform on {-10..10 step 5}) + 0.3 = 50.3
    assert x.mean(0).abs().max() < 0.15
    torch.testing.assert_close(x.var(0), torch.full((2,), 50.3, dtype=torch.float64), rtol=0.02,
                               atol=0.0)  # fmt: skip
    # each point is near a mean; residuals have variance 0.3; modes are equally weighted
    nearest = torch.round(x / 5.0) * 5.0
    resid = x - nearest
    assert abs(resid.var().item() - 0.3) < 0.01
    counts = torch.unique(nearest, dim=0, return_counts=True)[1]
    assert len(counts) == 25 and counts.min() > 1700 and counts.max() < 2300


# --------------------------------------------------------------------------------------------
# funnel


def test_funnel_density_matches_scipy() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(0, 2, (300, 10))
    got = get_target("funnel").log_reward(torch.from_numpy(x)).numpy()
    want = stats.norm(0, 3).logpdf(x[:, 0]) + stats.norm(0, np.exp(x[:, :1] / 2)).logpdf(
        x[:, 1:]
    ).sum(1)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


def test_funnel_log_z_by_importance_sampling() -> None:
    # proposal: x0 ~ N(0, 9), xi | x0 ~ N(0, (1.5)^2 e^{x0}), wider than the target, so the
    # weights are bounded (relative std of the estimate about 0.005 with 200k draws)
    rng = np.random.default_rng(2)
    n = 200_000
    x0 = rng.normal(0, 3, n)
    sd = 1.5 * np.exp(x0 / 2)
    rest = rng.normal(0, 1, (n, 9)) * sd[:, None]
    x = np.concatenate([x0[:, None], rest], axis=1)
    log_q = stats.norm(0, 3).logpdf(x0) + stats.norm(0, sd[:, None]).logpdf(rest).sum(1)
    log_p = get_target("funnel").log_reward(torch.from_numpy(x)).numpy()
    w = log_p - log_q
    log_z_hat = np.logaddexp.reduce(w) - math.log(n)
    assert abs(log_z_hat - get_target("funnel").log_z) < 0.03


def test_funnel_sampler() -> None:
    x = get_target("funnel").sample(100_000, _gen(6)).double()
    x0 = x[:, 0]
    assert abs(x0.mean().item()) < 0.05 and abs(x0.std().item() - 3.0) < 0.05
    z = x[:, 1:] / torch.exp(x0 / 2).unsqueeze(1)
    assert z.mean(0).abs().max() < 0.02
    assert (z.std(0) - 1.0).abs().max() < 0.02


# --------------------------------------------------------------------------------------------
# manywell


def _well_z1() -> float:
    val, _ = integrate.quad(lambda a: math.exp(-(a**4) + 6 * a**2 + 0.5 * a), -8, 8, limit=200,
                            points=[-1.7, 1.7], epsabs=0, epsrel=1e-12)  # fmt: skip
    return val


def test_manywell_log_z() -> None:
    t = get_target("manywell")
    independent = 16 * (math.log(_well_z1()) + 0.5 * math.log(2 * math.pi))
    assert abs(t.log_z - independent) < 1e-6
    assert abs(t.log_z - 164.69) < 0.01
    assert t.log_z == MANYWELL_LOG_Z


def test_manywell_density_layout() -> None:
    t = get_target("manywell")
    x = torch.zeros(3, 32, dtype=torch.float64)
    x[1, 0] = 1.0  # first coordinate of the first well: -1 + 6 + 0.5
    x[2, 1] = 1.0  # second coordinate of the first well: -0.5
    x[2, 30] = 2.0  # first coordinate of the last well: -16 + 24 + 1
    torch.testing.assert_close(t.log_reward(x), torch.tensor([0.0, 5.5, 8.5], dtype=torch.float64))


def test_manywell_sampler_matches_marginals() -> None:
    t = get_target("manywell")
    x = t.sample(50_000, _gen(7)).double().reshape(-1, 16, 2)
    a = x[..., 0].flatten().numpy()
    b = x[..., 1].flatten().numpy()
    assert abs(b.mean()) < 0.01 and abs(b.std() - 1.0) < 0.01
    # histogram of the first coordinate vs the quadrature of its density
    z1 = _well_z1()
    edges = np.linspace(-3.0, 3.0, 61)
    probs = np.array([
        integrate.quad(lambda s: math.exp(-(s**4) + 6 * s**2 + 0.5 * s), lo, hi)[0] / z1
        for lo, hi in zip(edges[:-1], edges[1:], strict=True)
    ])  # fmt: skip
    assert abs(probs.sum() - 1.0) < 1e-6
    hist = np.histogram(a, bins=edges)[0] / a.size
    assert np.abs(hist - probs).max() < 0.003
    # the right well is heavier (the 0.5 a tilt)
    p_right = integrate.quad(lambda s: math.exp(-(s**4) + 6 * s**2 + 0.5 * s), 0, 8)[0] / z1
    assert abs((a > 0).mean() - p_right) < 0.003

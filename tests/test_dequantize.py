"""Uniform dequantisation of quantised real data and its bits/dim (issue 19).

The digits as ``real[64]`` lie on the grid ``p/8 − 1`` (``p = 0 … 16``, step ``Δ = 1/8``).
References: a value's cell is recovered exactly in float64 (``floor(8 (y + 1))``); a density
uniform on the 17 cells of every pixel must score exactly ``log₂ 17`` bits per dimension.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

import dtg
from dtg.data import DataError, Dataset, bind_options, check_source, load_source
from dtg.data.dequantize import (
    QuantizedDataWarning,
    data_bits_per_dim,
    dequantized_bits_per_dim,
)
from dtg.errors import DtgError
from dtg.ir.space import Space

pytest.importorskip("sklearn")

REAL64 = Space("real", (64,))
STEP = 1 / 8

VAE = """
model vae {{
  data x : real[64] ~ digits({options})
  steps T = 1
  net enc : (real[64]) -> real[8] = mlp(hidden = [16])
  net dec : (real[4]) -> real[64] = mlp(hidden = [16])
  destroy  x[t]   ~ Normal(enc(x[t-1])[0:4], exp(0.5 * enc(x[t-1])[4:8]))
  generate x[T]   ~ Normal(0, 1)
  generate x[t-1] ~ Normal(dec(x[t]), 0.2)
  objective elbo
  train {{ steps = 4, batch = 32, checkpoint_every = 2, log_every = 1 }}
}}
"""


@pytest.fixture(scope="module")
def clean() -> Dataset:
    return load_source("digits", {}, REAL64)


@pytest.fixture(scope="module")
def noisy() -> Dataset:
    return load_source("digits", {"dequantize": True}, REAL64)


def cell(y: torch.Tensor) -> torch.Tensor:
    """The grid value below each ``y`` (exact: float32 → float64 adds and scales without error)."""
    return torch.floor((y.double() + 1) * 8) / 8 - 1


def test_batches_lie_in_the_cells_of_training_rows(clean: Dataset, noisy: Dataset) -> None:
    assert noisy.meta["quantization_step"] == STEP and noisy.meta["dequantized"]
    assert torch.equal(noisy.train, clean.train)  # the noise is drawn per batch, not stored
    rows = {tuple(r) for r in clean.train.double().tolist()}
    stream = noisy.batches(256, torch.Generator().manual_seed(5))
    noise = []
    for _ in range(3):
        batch = next(stream)
        assert batch.dtype == torch.float32 and batch.shape == (256, 64)
        x = cell(batch)
        u = batch.double() - x
        assert (u >= 0).all() and (u < STEP).all()
        assert all(tuple(r) in rows for r in x.tolist())
        noise.append(u / STEP)
    u = torch.cat(noise)
    assert abs(float(u.mean()) - 0.5) < 0.01  # uniform: mean 1/2 (σ of the mean 0.0013)
    assert abs(float(u.var()) - 1 / 12) < 0.005


def test_each_batch_has_fresh_noise() -> None:
    """One training row: every draw of it gets its own noise, in every batch."""
    row = torch.full((1, 4), 0.5)
    data = Dataset(row, row, Space("real", (4,)), {"quantization_step": 0.25, "dequantized": True})
    stream = data.batches(8, torch.Generator().manual_seed(0))
    first, second = next(stream), next(stream)
    both = torch.cat([first, second])
    assert (both >= 0.5).all() and (both < 0.75).all()
    assert len({tuple(r) for r in both.tolist()}) == 16


def test_the_stream_is_determined_by_the_data_seed(noisy: Dataset) -> None:
    def draw(seed: int) -> list[torch.Tensor]:
        stream = noisy.batches(64, torch.Generator().manual_seed(seed))
        return [next(stream) for _ in range(2)]

    a, b, c = draw(3), draw(3), draw(4)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not torch.equal(a[0], c[0])


def test_a_source_without_dequantize_draws_as_before(clean: Dataset) -> None:
    generator = torch.Generator().manual_seed(9)
    batch = next(clean.batches(32, generator))
    replay = torch.Generator().manual_seed(9)
    assert torch.equal(batch, clean.train[torch.randint(clean.n_train, (32,), generator=replay)])
    assert clean.meta["quantization_step"] == STEP and not clean.meta["dequantized"]


def test_the_held_out_split_is_dequantised_once_from_the_seed(clean, noisy) -> None:
    u = noisy.test.double() - clean.test.double()
    assert (u >= 0).all() and (u < STEP).all() and float(u.std()) > 0.03
    again = load_source("digits", {"dequantize": True}, REAL64)
    assert torch.equal(again.test, noisy.test)
    other = load_source("digits", {"dequantize": True}, REAL64, seed=1)
    assert not torch.equal(other.test, noisy.test)


def test_bits_per_dim_formula_by_hand() -> None:
    # Δ = 1/8: ln(1/Δ) / ln 2 = 3 bits per dimension on top of the density's NLL
    assert dequantized_bits_per_dim(100.0, 64, STEP) == pytest.approx(100 / (64 * math.log(2)) + 3)
    assert dequantized_bits_per_dim(0.0, 10, 1.0) == 0.0
    assert dequantized_bits_per_dim(-5.0, 1, 0.5) == pytest.approx(-5 / math.log(2) + 1)


def test_a_uniform_density_on_the_cells_scores_log2_of_the_levels(noisy: Dataset) -> None:
    """Uniform on [−1, 1 + Δ)^64 puts mass 1/17 on each cell of each pixel: log₂ 17 bits/dim."""
    low, high = torch.tensor([-1.0, 1.0 + STEP], dtype=torch.float64)
    density = torch.distributions.Uniform(low, high)
    nll = -density.log_prob(noisy.test.double()).sum(-1).mean()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bits = data_bits_per_dim(float(nll), 64, noisy.meta)
    assert bits == pytest.approx(math.log2(17), rel=1e-9)


def test_quantised_data_without_dequantisation_warns(clean: Dataset) -> None:
    # a density peaked on the grid points: a negative "bits/dim", which is no likelihood
    nll = -torch.distributions.Normal(clean.test, 0.01).log_prob(clean.test).sum(-1).mean()
    with pytest.warns(QuantizedDataWarning, match=r"digits\(dequantize = true\)"):
        bits = data_bits_per_dim(float(nll), 64, clean.meta)
    assert bits == pytest.approx(float(nll) / (64 * math.log(2))) and bits < 0
    moons = load_source("moons", {"n": 100}, Space("real", (2,)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert data_bits_per_dim(2.0, 2, moons.meta) == pytest.approx(1 / math.log(2))
    assert moons.meta["quantization_step"] is None


def test_a_file_source_takes_its_step(tmp_path) -> None:
    path = tmp_path / "pixels.npy"
    np.save(path, np.arange(40, dtype=np.float32).reshape(20, 2) % 5)
    data = load_source("file", {"path": str(path), "dequantize": 1}, Space("real", (2,)))
    assert data.meta["quantization_step"] == 1.0 and data.meta["dequantized"]
    batch = next(data.batches(50, torch.Generator().manual_seed(0)))
    u = batch - torch.floor(batch)
    assert (u >= 0).all() and (u < 1).all() and (torch.floor(batch) <= 4).all()


def test_options_bind_only_when_given() -> None:
    assert bind_options("digits") == {"classes": None}  # IR dumps of existing models unchanged
    assert bind_options("digits", (), {"dequantize": True}) == {
        "classes": None,
        "dequantize": True,
    }
    assert check_source("digits", {"dequantize": False}, REAL64)["dequantize"] is False
    assert check_source("digits", {"dequantize": 0.125}, REAL64)["dequantize"] == STEP


@pytest.mark.parametrize(
    ("source", "space", "message"),
    [
        ("moons", "real[2]", "moons() has no known quantisation step"),
        ("digits", "token(17)[64]", "dequantize adds noise to real data"),
        ("digits", "real[64]", "values are 0.125 apart, not 0.5"),
    ],
)
def test_the_checker_refuses_what_cannot_be_dequantised(source, space, message) -> None:
    value = "0.5" if "0.125" in message else "true"
    line = f"data x : {space} ~ {source}(dequantize = {value})"
    text = VAE.format(options="").replace("data x : real[64] ~ digits()", line)
    with pytest.raises(DtgError) as caught:
        dtg.loads(text)
    assert message in caught.value.message
    assert caught.value.span is not None and caught.value.span.line == 3


@pytest.mark.parametrize("value", [-1, 0, math.inf, "yes"])
def test_bad_steps_are_refused(value) -> None:
    with pytest.raises(DataError, match="option dequantize must be"):
        check_source("file", {"path": "x.npy", "dequantize": value}, Space("real", (2,)))


def test_training_on_dequantised_digits_resumes_exactly(one_thread, tmp_path) -> None:
    def compiled():
        torch.manual_seed(0)
        return dtg.loads(VAE.format(options="dequantize = true")).compile(device="cpu")

    straight = compiled()
    run = dtg.train(straight, out=tmp_path / "a", progress=False)
    halves = compiled()
    dtg.train(halves, steps=2, out=tmp_path / "b", progress=False)
    resumed = compiled()
    again = dtg.train(resumed, steps=4, out=tmp_path / "b", resume=True, progress=False)
    assert again.losses == run.losses[2:]
    torch.manual_seed(0)
    plain = dtg.loads(VAE.format(options="")).compile(device="cpu")
    other = dtg.train(plain, out=tmp_path / "c", progress=False)
    assert other.losses != run.losses  # the noise reaches the loss

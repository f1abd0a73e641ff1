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


# --------------------------------------------------------------------------- token sample quality
# (issue 19: token models get a sample-quality figure; digits get the classifier's)

TINY_DIGITS = """
model tiny_digits {{
  data x : {space} ~ digits()
  steps T = 2
  schedule alpha(t) = 1 - t/T
  net logits : ({space}, time) -> real[64, 17] = mlp(hidden = [8])
  destroy  x[t]   ~ Mask(x[t-1], keep = alpha(t) / alpha(t-1))
  generate x[T]   = masked
  generate x[t-1] ~ Guess(x[t], logits)
  objective masking
}}
"""


def _digits_model():
    import dtg
    from dtg.runtime.loop import DATA_SPLIT_SEED

    model = dtg.loads(TINY_DIGITS.format(space="token(17)[64]")).compile("cpu")
    return model, model.dataset(DATA_SPLIT_SEED).test


def _labels_by_hand(tokens: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """The classifier's labels and confidences, scaling 17 grey levels to [-1, 1] here."""
    from dtg.classifier import digits_classifier

    images = tokens.double().numpy() / 16.0 * 2.0 - 1.0
    with torch.no_grad():
        logits = digits_classifier()(torch.tensor(images, dtype=torch.float32)).double().numpy()
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    return probs.argmax(1), probs.max(1)


def test_token_frequency_tv_by_hand() -> None:
    from dtg.runtime.sample_quality import token_frequency_tv

    samples = torch.tensor([[0, 1], [0, 2]])
    data = torch.tensor([[0, 1], [1, 1]])
    # position 0: (1, 0, 0) against (½, ½, 0) → ½; position 1: (0, ½, ½) against (0, 1, 0) → ½
    assert token_frequency_tv(samples, data, vocab=3) == pytest.approx(0.5)
    assert token_frequency_tv(data, data, vocab=3) == 0.0
    # a [MASK] left in a sample (id V = 3) is a token the data never has
    masked = torch.tensor([[3, 3], [3, 3]])
    assert token_frequency_tv(masked, data, vocab=3) == pytest.approx(1.0)


def test_data_as_samples_scores_zero(one_thread, monkeypatch) -> None:
    model, test = _digits_model()
    monkeypatch.setattr(model, "sample", lambda n: test[:n].clone())
    report = evaluate(model, n=len(test))
    assert report["token_frequency_tv"] == 0.0
    assert report["class_histogram_tv"] == 0.0
    assert report["confidence_mean"] == pytest.approx(report["data_confidence_mean"], abs=1e-12)
    _, confidence = _labels_by_hand(test)
    assert report["data_confidence_mean"] == pytest.approx(confidence.mean(), abs=1e-5)
    assert "nelbo_nats" in report and "mmd" not in report


def test_degenerate_sampler_scores_against_a_hand_computation(one_thread, monkeypatch) -> None:
    model, test = _digits_model()
    labels, confidence = _labels_by_hand(test)
    one = int(np.flatnonzero(labels == 3)[0])  # a held-out image the classifier calls a 3
    monkeypatch.setattr(model, "sample", lambda n: test[one].repeat(n, 1))
    report = evaluate(model, n=500)
    share = np.bincount(labels, minlength=10) / len(labels)
    # every sample is labelled 3: TV = ½ (|1 − h(3)| + Σ_{c≠3} h(c)) = 1 − h(3)
    assert report["class_histogram_tv"] == pytest.approx(1.0 - share[3], abs=1e-12)
    assert report["confidence_mean"] == pytest.approx(confidence[one], abs=1e-5)
    assert report["data_confidence_mean"] == pytest.approx(confidence.mean(), abs=1e-5)
    # per position, the samples' one token against the data's frequencies there
    data = test.numpy()
    tv = np.mean([1.0 - np.mean(data[:, i] == data[one, i]) for i in range(64)])
    assert report["token_frequency_tv"] == pytest.approx(tv, abs=1e-12)


def test_untrained_token_model_samples_are_scored(one_thread) -> None:
    model, test = _digits_model()
    report = evaluate(model, n=200)
    keys = {"token_frequency_tv", "class_histogram_tv", "confidence_mean", "data_confidence_mean"}
    assert keys <= set(report)
    assert report["token_frequency_tv"] > 0.3  # near-uniform tokens are far from digits


def test_real_digits_get_the_classifier_figures(one_thread, monkeypatch) -> None:
    import dtg
    from dtg.runtime.loop import DATA_SPLIT_SEED

    text = """
    model real_digits {
      data x : real[64] ~ digits()
      steps T = 2
      schedule beta(t) = 0.5
      net eps : (real[64], time) -> real[64] = mlp(hidden = [8])
      destroy  x[t]   ~ Normal(sqrt(1 - beta(t)) * x[t-1], sqrt(beta(t)))
      generate x[T]   ~ Normal(0, 1)
      generate x[t-1] ~ Guess(x[t], eps)
      objective denoising
    }
    """
    model = dtg.loads(text).compile("cpu")
    test = model.dataset(DATA_SPLIT_SEED).test
    monkeypatch.setattr(model, "sample", lambda n: test[:n].clone())
    report = evaluate(model, n=len(test))
    assert report["class_histogram_tv"] == 0.0 and "token_frequency_tv" not in report
    _, confidence = _labels_by_hand((test + 1.0) / 2.0 * 16.0)  # back to 0..16 grey levels
    assert report["confidence_mean"] == pytest.approx(confidence.mean(), abs=1e-5)

"""Per-example scores (issue 26): ``dtg score`` and :mod:`dtg.runtime.score`.

References written out here: the per-example DDPM negative ELBO of the closed-form optimal
ε-predictor for Gaussian data (each term's expectation over x_t given that x_0), and the AUROC as
the share of (positive, negative) pairs ordered correctly, counted pair by pair.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import moons_model
from test_denoising import optimal_epsilon, program

from dtg.cli import main
from dtg.runtime.score import auroc, score_examples


def analytic_nelbo(model, x0: torch.Tensor, mu: torch.Tensor, sigma: float) -> torch.Tensor:
    """E[NELBO(x0)] over the destruction, for the optimal predictor: per dimension,
    Σ_{k≥2} c_k² e_k / (2 s_k) + ½ log(2π β₁) + e_1 / (2 β₁) + KL(N(m_T x0, v_T) ‖ N(0, 1)),
    with e_k = E‖x0 − x̂0(x_k)‖² = (1 − g_k m_k)² (x0 − μ)² + g_k² v_k, g_k = m_k σ² / (m_k² σ² + v_k).
    """
    tables, steps = model.ir.marginals, model.ir.steps
    m, v = (torch.tensor(tables[k], dtype=torch.float64) for k in ("mean", "var"))
    gain = m * sigma**2 / (m**2 * sigma**2 + v)
    centred = (x0 - mu) ** 2  # [N, 2]
    e = (1 - gain * m)[None, None, :] ** 2 * centred[..., None] + (gain**2 * v)[None, None, :]
    post_x0, post_var = (
        torch.tensor(tables[k], dtype=torch.float64) for k in ("post_x0", "post_var")
    )
    kl = (post_x0[2:] ** 2 * e[..., 2:] / (2 * post_var[2:])).sum(-1)
    beta1 = float(tables["beta"][1])
    decoder = 0.5 * math.log(2 * math.pi * beta1) + e[..., 1] / (2 * beta1)
    prior = 0.5 * (v[steps] + m[steps] ** 2 * x0**2 - 1 - torch.log(v[steps]))
    return (kl + decoder + prior).sum(-1)


def optimal_model(tmp_path: Path, device) -> tuple:
    """A 200-level DDPM of N(μ, 0.7²) data with the closed-form optimal ε-predictor on
    ``device``, four examples ``[4, 2]`` and their analytic expected NELBO (on the CPU)."""
    mu, sigma = torch.tensor([0.5, -1.0], dtype=torch.float64), 0.7
    model = program(tmp_path, steps=200).compile(device).double()
    model.generate.net = optimal_epsilon(model, mu.to(device), sigma)
    x0 = torch.tensor([[0.5, -1.0], [1.2, -0.3], [-0.9, -2.4], [3.0, 2.0]], dtype=torch.float64)
    return model, x0, analytic_nelbo(model, x0, mu, sigma)


@pytest.mark.device
def test_per_example_nelbo_equals_the_analytic_value(tmp_path: Path, device) -> None:
    """The model on ``device``; the analytic reference on the CPU (scores come back there)."""
    repeats = 2000
    model, x0, exact = optimal_model(tmp_path, device)
    draws = score_examples(model, x0.repeat(repeats, 1), seed=1).reshape(repeats, len(x0))
    error = 4 * draws.std(0) / math.sqrt(repeats)  # 4 standard errors of the mean, per example
    assert torch.all((draws.mean(0) - exact).abs() < error), (draws.mean(0), exact, error)
    averaged = score_examples(model, x0, seed=2, repeats=repeats)
    assert torch.all((averaged - exact).abs() < error)
    assert exact[3] > exact[1] > exact[0]  # farther from the mean scores higher


@pytest.mark.device
def test_a_few_sampled_levels_estimate_the_analytic_nelbo(tmp_path: Path, device) -> None:
    """``nelbo(levels = K)`` (the held-out curve's ``eval_levels``): K of the 200 levels per
    example, weighted 200 / K — unbiased for the same analytic value, noisier."""
    repeats = 4000
    model, x0, exact = optimal_model(tmp_path, device)
    rows = x0.to(device).repeat(repeats, 1)
    torch.manual_seed(3)
    for levels in (1, 8):
        draws = model.nelbo(rows, levels=levels).cpu().reshape(repeats, len(x0))
        error = 4 * draws.std(0) / math.sqrt(repeats)
        assert torch.all((draws.mean(0) - exact).abs() < error), (levels, draws.mean(0), exact)
    full = model.nelbo(rows).cpu().reshape(repeats, len(x0))
    assert torch.all(draws.std(0) > full.std(0))  # the price of skipping levels


def test_auroc_counts_ordered_pairs() -> None:
    generator = torch.Generator().manual_seed(0)
    positive = torch.randint(0, 6, (40,), generator=generator).double()  # ties included
    negative = torch.randint(0, 4, (30,), generator=generator).double()
    pairs = [(p > n) + 0.5 * (p == n) for p in positive.tolist() for n in negative.tolist()]
    assert auroc(positive, negative) == pytest.approx(sum(pairs) / len(pairs))


TINY = moons_model(train="steps = 20, lr = 0.01")


@pytest.fixture
def trained(tmp_path: Path, one_thread: None) -> tuple[str, str]:
    path = tmp_path / "tiny.dtg"
    path.write_text(TINY)
    assert main(["train", str(path), "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    return str(path), str(tmp_path / "run" / "checkpoint.pt")


def run_json(capsys: pytest.CaptureFixture, *argv: str) -> dict:
    capsys.readouterr()
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_scores_average_to_what_eval_reports(trained, tmp_path: Path, capsys) -> None:
    file, checkpoint = trained
    out = tmp_path / "scores.npy"
    scored = run_json(capsys, "score", file, "--checkpoint", checkpoint, "-o", str(out), "--json")
    evaluated = run_json(capsys, "eval", file, "--checkpoint", checkpoint, "--json")
    assert scored["mean_nats"] == pytest.approx(evaluated["nelbo_nats"], rel=1e-12)
    assert scored["mean_bits"] == pytest.approx(evaluated["bits_per_dim"], rel=1e-9)
    scores = np.load(out)
    assert scores.shape == (evaluated["test_examples"],) and scores.dtype == np.float64
    assert scores.mean() == pytest.approx(scored["mean_nats"], rel=1e-12)


def test_a_data_file_is_scored_row_by_row(trained, tmp_path: Path, capsys) -> None:
    file, checkpoint = trained
    near, far = np.zeros((50, 2)), np.full((50, 2), 6.0)
    np.save(tmp_path / "near.npy", near)
    np.save(tmp_path / "far.npy", far)
    scored = run_json(
        capsys, "score", file, "--checkpoint", checkpoint, "--data", str(tmp_path / "far.npy"),
        "--reference", str(tmp_path / "near.npy"), "--json",
    )  # fmt: skip
    assert scored["examples"] == 50
    assert scored["mean_nats"] > scored["reference_mean_nats"]  # points far off the moons
    assert scored["auroc_vs_reference"] > 0.99


def test_bad_data_is_a_clear_error(trained, tmp_path: Path, capsys) -> None:
    file, checkpoint = trained
    assert main(["score", file, "--checkpoint", checkpoint, "--data", "nope.npy"]) == 2
    assert "--data nope.npy: no such file" in capsys.readouterr().err
    np.save(tmp_path / "wide.npy", np.zeros((5, 3)))
    assert (
        main(["score", file, "--checkpoint", checkpoint, "--data", str(tmp_path / "wide.npy")]) == 1
    )
    error = capsys.readouterr().err
    assert "wide.npy" in error and "shape [2]" in error and "Traceback" not in error
    assert main(["score", file, "--checkpoint", checkpoint, "-o", str(tmp_path / "s.csv")]) == 2
    assert "written as .npy" in capsys.readouterr().err


def test_sampler_scores_are_its_log_weights(tmp_path: Path, capsys, one_thread: None) -> None:
    source = Path(__file__).parents[1] / "examples" / "gmm25_tb.dtg"
    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                str(source),
                "--steps",
                "2",
                "--batch",
                "16",
                "--out",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    checkpoint = str(out / "checkpoint.pt")
    npy = tmp_path / "w.npy"
    argv = ["--checkpoint", checkpoint, "-n", "300", "--json"]
    scored = run_json(capsys, "score", str(source), *argv, "-o", str(npy))
    evaluated = run_json(capsys, "eval", str(source), *argv)
    weights = torch.from_numpy(np.load(npy))
    assert weights.shape == (300,)
    log_z = float(torch.logsumexp(weights, 0) - math.log(len(weights)))  # log-mean-exp
    assert log_z == pytest.approx(evaluated["log_z_rw"], abs=1e-6)
    assert scored["mean_log_weight"] == pytest.approx(evaluated["log_z_elbo"], abs=1e-6)
    assert main(["score", str(source), *argv, "--data", "train"]) == 2  # a sampler has no data

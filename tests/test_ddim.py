"""Few-step sampling (issue 24): respaced DDIM with η against its defining properties.

References written out here: with η = 1 and s = t − 1 a step is the model's own ancestral step
(the destruction's posterior at x̂[0]); for any η a step from q(x[t] | x[0]) lands on
q(x[s] | x[0]) = N(m_s x[0], v_s) when x̂[0] is the true x[0] (Song et al. 2021, Lemma 1).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from test_denoising import program

from dtg.channels.base import level_tensor
from dtg.cli import main
from dtg.runtime.ddim import ddim_levels, ddim_step


def test_levels_are_evenly_spaced_and_distinct() -> None:
    assert ddim_levels(20, 4) == [20, 15, 10, 5, 0]
    assert ddim_levels(7, 7) == [7, 6, 5, 4, 3, 2, 1, 0]
    assert ddim_levels(10, 1) == [10, 0]
    path = ddim_levels(1000, 37)
    assert len(set(path)) == 38 and path == sorted(path, reverse=True)
    with pytest.raises(ValueError):
        ddim_levels(10, 11)


def test_eta_one_over_one_level_is_the_ancestral_step(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = program(tmp_path, steps=20).compile("cpu").double()
    guess = model.generate
    x = torch.randn(16, 2, dtype=torch.float64)
    for t in (20, 11, 2):
        mean, variance = ddim_step(guess, x, t, t - 1, eta=1.0)
        want_mean, want_var = guess.params(x, level_tensor(t, 16, x.device), decoder=False)
        assert torch.allclose(mean, want_mean, atol=1e-10)
        assert torch.allclose(variance.expand_as(mean), want_var.expand_as(mean), atol=1e-12)
    mean, variance = ddim_step(guess, x, 1, 0, eta=1.0)  # the last step: x̂[0], no noise
    assert torch.allclose(mean, guess.x0(x, level_tensor(1, 16, x.device)))
    assert torch.equal(variance, torch.zeros_like(variance))


@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
def test_steps_keep_the_marginals_when_x0_is_known(tmp_path: Path, eta: float) -> None:
    model = program(tmp_path, steps=50, predict="sample").compile("cpu").double()
    x0 = torch.tensor([0.7, -1.3], dtype=torch.float64)
    model.generate.net = lambda xt, t: x0.expand_as(xt)  # an oracle: x̂[0] is the true x[0]
    destroy, n = model.destroy, 200_000
    torch.manual_seed(1)
    x = destroy.mean[50] * x0 + destroy.sigma[50] * torch.randn(n, 2, dtype=torch.float64)
    for t, s in zip([50, 37, 20, 6], [37, 20, 6, 3], strict=True):
        mean, variance = ddim_step(model.generate, x, t, s, eta)
        x = mean + variance.sqrt() * torch.randn_like(mean)
        m, v = float(destroy.mean[s]), float(destroy.var[s])
        assert torch.allclose(x.mean(0), m * x0, atol=5 * (v / n) ** 0.5 + 1e-9)
        assert torch.allclose(x.var(0), torch.full((2,), v, dtype=torch.float64), rtol=0.02)


def test_sample_levels_from_the_cli(tmp_path: Path, capsys, one_thread: None) -> None:
    model = program(tmp_path, steps=20)  # writes g.dtg and gauss.npy
    del model
    file, out = str(tmp_path / "g.dtg"), tmp_path / "run"
    argv = ["train", file, "--steps", "3", "--batch", "16", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    checkpoint = str(out / "checkpoint.pt")
    npy = tmp_path / "few.npy"
    argv = ["sample", file, "--checkpoint", checkpoint, "-n", "64", "--levels", "5", "-o", str(npy)]
    assert main(argv) == 0
    samples = np.load(npy)
    assert samples.shape == (64, 2) and np.isfinite(samples).all()
    capsys.readouterr()
    assert main(["sample", file, "--checkpoint", checkpoint, "--levels", "21"]) == 1
    assert "--levels must be in [1, 20]" in capsys.readouterr().err
    assert main(["sample", file, "--checkpoint", checkpoint, "--eta", "1"]) == 2
    assert "--eta goes with --levels" in capsys.readouterr().err


def test_a_masked_model_refuses_levels(tmp_path: Path, capsys, one_thread: None) -> None:
    source = Path(__file__).parents[1] / "examples" / "shuffle3.dtg"
    out = tmp_path / "run"
    assert main(["train", str(source), "--steps", "2", "--out", str(out), "--no-progress"]) == 0
    capsys.readouterr()
    argv = ["sample", str(source), "--checkpoint", str(out / "checkpoint.pt"), "--levels", "2"]
    assert main(argv) == 1
    error = capsys.readouterr().err
    assert "needs linear-Gaussian destruction" in error and "Traceback" not in error

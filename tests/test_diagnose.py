"""Tracing a NaN to its parameter, channel and level (dtg.runtime.diagnose)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

import dtg
from dtg.runtime import train

ROOT = Path(__file__).resolve().parent.parent


def moons():
    return dtg.load(ROOT / "examples" / "ddpm_moons.dtg").compile("cpu")


def test_a_healthy_model_has_no_culprit() -> None:
    model = moons()
    assert model.diagnose_nan(model.dataset(0).train[:32]) is None
    sampler = dtg.load(ROOT / "examples" / "gmm25_tb.dtg").compile("cpu")
    assert sampler.diagnose_nan(32) is None


def test_a_bad_destruction_level_is_named() -> None:
    model = moons()
    model.destroy.s[7] = math.nan  # the step noise of level 7
    found = model.diagnose_nan(model.dataset(0).train[:32])
    assert found is not None and "destroy channel" in found and "level t = 7" in found


def test_a_bad_generation_level_is_named() -> None:
    model = moons()
    model.destroy.post_xt[12] = math.nan  # the posterior mean the Guess uses at level 12
    found = model.diagnose_nan(model.dataset(0).train[:32])
    assert found is not None and "generate channel" in found and "level t = 12" in found
    assert "eps" in found  # the net of that channel


def test_a_bad_parameter_is_named_first() -> None:
    model = moons()
    with torch.no_grad():
        model.nets["eps"].body[2].weight[0, 0] = math.inf
    found = model.diagnose_nan(model.dataset(0).train[:32])
    assert found == "the parameter nets.eps.body.2.weight is not finite"


def test_a_sampler_step_is_named() -> None:
    sampler = dtg.load(ROOT / "examples" / "gmm25_tb.dtg").compile("cpu")
    drift = sampler.nets["drift"]
    original = drift.forward

    def poisoned(x, t):  # NaN where the level is 40 (t = 40/T)
        out = original(x, t)
        return torch.where((t * 100).round()[:, None] == 40, math.nan, out)

    drift.forward = poisoned
    found = sampler.diagnose_nan(16)
    assert found is not None and "generate channel" in found and "level t = 40" in found


def test_training_names_the_channel_and_level(tmp_path: Path) -> None:
    model = moons()
    model.destroy.sigma[7] = math.nan  # the marginal std the denoising loss uses
    with pytest.raises(dtg.DtgRuntimeError) as info:
        train(model, steps=50, out=tmp_path, progress=False)
    text = info.value.format()
    assert "training stopped at step 1" in text
    assert "first non-finite value: the destroy channel" in text and "level t = 7" in text
    assert "q(x[7] | x[0])" in text

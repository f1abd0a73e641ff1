"""Tracing a NaN to its parameter, channel and level (dtg.runtime.diagnose)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from conftest import SMALL_SAMPLER

import dtg
from dtg.plugins import unregister_reward
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


# ---------------------------------------------------------------- every family (issue 18)
# Each test poisons one place whose channel and level are known from the model's definition
# (not from the diagnosis), and checks that the diagnosis, or the training error, names them.


def example(name: str):
    return dtg.load(ROOT / "examples" / f"{name}.dtg").compile("cpu")


def poison_level(net, level: int, steps: int) -> None:
    """Make ``net`` (called as ``net(x, t / T)``) return NaN for the examples at ``level``."""
    original = net.forward

    def poisoned(x, t):
        out = original(x, t)
        where = ((t * steps).round() == level).reshape(-1, *([1] * (out.dim() - 1)))
        return torch.where(where, math.nan, out)

    net.forward = poisoned


def stop_message(model, tmp_path: Path, **options) -> str:
    with pytest.raises(dtg.DtgRuntimeError) as info:
        train(model, out=tmp_path / "run", progress=False, **options)
    return info.value.format()


def test_a_masking_table_is_named_at_its_level() -> None:
    # before issue 18 every discrete diagnosis failed: "normal_kernel_cpu" not implemented for 'Long'
    torch.manual_seed(0)
    model = example("mdlm_digits")
    model.destroy.keep[7] = math.nan  # the keep probability of the Mask step into x[7]
    found = model.diagnose_nan(model.dataset(0).train[:8])
    assert found is not None and "destroy channel" in found and "level t = 7" in found


def test_a_masking_net_is_named_at_its_level(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = example("mdlm_digits")
    poison_level(model.nets["logits"], 7, 64)
    # batch 64 with antithetic levels: every level 1..64 once, so level 7 is trained at step 1
    text = stop_message(model, tmp_path, steps=2, batch=64)
    assert "the loss became nan" in text
    assert "first non-finite value: the generate channel" in text and "level t = 7" in text
    assert "logits" in text


def test_an_autoregressive_position_is_named_as_its_level(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = example("autoregressive_digits")
    net = model.nets["logits"]
    original = net.forward

    def poisoned(x):  # NaN logits for pixel 60; MashLast generation fills pixel L - t = 60 at t = 4
        out = original(x).clone()
        out[:, 60] = math.nan
        return out

    net.forward = poisoned
    text = stop_message(model, tmp_path, steps=2, batch=8)
    assert "first non-finite value: the generate channel" in text and "level t = 4" in text


def test_a_shuffle_level_is_named(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = example("shuffle3")
    poison_level(model.nets["logits"], 2, 2)
    text = stop_message(model, tmp_path, steps=2, batch=8)
    assert "first non-finite value: the generate channel" in text and "level t = 2" in text


def test_an_elbo_destruction_level_is_named(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = example("learned_variance_moons")
    poison_level(model.nets["lv"], 5, 20)  # the learned std of the destroy step into x[5]
    text = stop_message(model, tmp_path, steps=2, batch=16)
    assert "first non-finite value: the destroy channel" in text and "level t = 5" in text


def test_an_overflowing_prediction_is_named(tmp_path: Path) -> None:
    model = moons()
    with torch.no_grad():  # finite weights whose prediction ~1e25 squares to inf in float32
        for parameter in model.nets["eps"].parameters():
            parameter.mul_(1e7)
    text = stop_message(model, tmp_path, steps=2, batch=16)
    assert "the loss became inf" in text
    assert "first non-finite value: the generate channel" in text and "level t = " in text
    assert "its square overflows float32" in text


@pytest.fixture
def nan_reward():
    dtg.register_reward("nan_everywhere", lambda x: torch.full((x.shape[0],), math.nan))
    yield "nan_everywhere"
    unregister_reward("nan_everywhere")


def test_a_samplers_bad_reward_is_named(tmp_path: Path, nan_reward: str) -> None:
    source = (ROOT / "examples" / "gmm25_tb.dtg").read_text(encoding="utf-8")
    path = tmp_path / "bad.dtg"
    path.write_text(source.replace("gmm25(x)", f"{nan_reward}(x)"), encoding="utf-8")
    text = stop_message(dtg.load(path).compile("cpu"), tmp_path, steps=2, batch=8)
    assert "first non-finite value: the reward 'logr'" in text


def test_a_fine_tuned_models_bad_reward_is_named(tmp_path: Path, nan_reward: str) -> None:
    path = tmp_path / "tuned.dtg"
    path.write_text(
        SMALL_SAMPLER
        + f"""
model tuned extends base {{
  reward r(x) = {nan_reward}(x)
  objective relative_trajectory_balance(beta = 1)
}}
""",
        encoding="utf-8",
    )
    text = stop_message(dtg.load(path).compile("cpu"), tmp_path, steps=2, batch=8)
    assert "first non-finite value: the reward 'r'" in text


SQRT_AT_ZERO = """
model sqrt_drift {
  space x : real[2]
  steps T = 4
  reward logr(x) = -0.5 * sum(x^2)
  schedule s(t) = (T - t) / (T - t + 1)
  schedule k(t) = min(1, abs(t - 2))
  net drift : (real[2], time) -> real[2] = mlp(hidden = [8], zero_init = true)
  generate x[T]   = 0
  generate x[t-1] ~ Normal(x[t] + sqrt(abs(drift(x[t], t)) + k(t)), sqrt(5 / T))
  destroy  x[t]   ~ Normal(s(t) * x[t-1], sqrt(5 / T * s(t)))
  objective trajectory_balance
}
"""


def sqrt_model(tmp_path: Path):
    # drift is 0 (zero_init), k(2) = 0 and k(t) = 1 elsewhere: the loss is finite, but the
    # gradient of sqrt at 0 is infinite at level 2 only
    path = tmp_path / "sqrt.dtg"
    path.write_text(SQRT_AT_ZERO, encoding="utf-8")
    return dtg.load(path).compile("cpu")


def test_a_non_finite_gradient_is_named_with_its_level_and_parameter(tmp_path: Path) -> None:
    text = stop_message(sqrt_model(tmp_path), tmp_path, steps=2, batch=8)
    assert "the gradient norm became nan" in text
    assert "first non-finite value: the gradient of the generate channel" in text
    assert "level t = 2 " in text and "with respect to nets.drift." in text


def test_the_hint_offers_grad_clip_only_when_it_is_off(tmp_path: Path) -> None:
    text = stop_message(sqrt_model(tmp_path), tmp_path / "a", steps=2, batch=8)
    assert "set grad_clip" not in text and "already clipped" in text  # grad_clip = 1 (default)
    unclipped = stop_message(
        sqrt_model(tmp_path), tmp_path / "b", steps=2, batch=8, overrides={"grad_clip": 0}
    )
    assert "set grad_clip" in unclipped


def test_the_largest_gradient_is_named() -> None:
    from dtg.runtime.diagnose import largest_gradient

    model = example("gmm25_tb")
    found = largest_gradient(model, 8)
    assert found is not None and found.startswith("norm ")
    assert "level t = " in found and "with respect to nets.drift." in found


def test_healthy_models_of_every_family_replay_clean() -> None:
    # the diagnosis must not blame a healthy model (−inf token log-probabilities are fine)
    for name in ("shuffle3", "vae_digits", "gmm25_learned", "rtb_even_digits"):
        model = example(name)
        data = model.dataset(0).train[:8] if model.needs_data else 8
        assert model.diagnose_nan(data) is None, name


def test_an_overflowing_norm_of_finite_gradients_names_the_largest(tmp_path: Path) -> None:
    from dtg.runtime.monitor import Monitor

    model = example("gmm25_tb")  # healthy: every value and gradient of a replay is finite
    opts = {"steps": 10, "log_every": 5, "grad_clip": 0.0}
    monitor = Monitor(model, opts, tmp_path, 0, 0.0, False, resumed=False, sync_every=1)
    try:  # a norm that overflowed float32 although each gradient is finite
        with pytest.raises(dtg.DtgRuntimeError) as info:
            monitor.check(3, "gradient norm", torch.tensor(math.inf), 8)
    finally:
        monitor.close()
    text = info.value.format()
    assert "training stopped at step 3: the gradient norm became inf" in text
    assert "every gradient of a replay is finite; the largest: norm " in text
    assert "level t = " in text and "with respect to nets.drift." in text
    assert "set grad_clip" in text  # grad_clip = 0: clipping is off

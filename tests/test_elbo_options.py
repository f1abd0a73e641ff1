"""``objective elbo(beta, kl_warmup, free_bits)`` and the per-level KL of ``dtg eval`` (issue 19).

The references are written here by hand from the nets of a tiny VAE (one and two latent levels):
the Gaussian log-densities, the analytic KL of two Gaussians, and the KL weight and floors of
Kingma et al. (2016); the noise is the seeded ``torch.randn`` stream the guide draws from.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from conftest import EXAMPLES

import dtg
from dtg.errors import DtgError
from dtg.objectives.elbo import Elbo, kl_weight

VAE = """
model tiny {{
  data x : real[2] ~ moons(n = 200)
  steps T = {steps}
  net enc : (real[2]) -> real[4] = mlp(hidden = [8])
  net dec : (real[2]) -> real[2] = mlp(hidden = [8])
  destroy  x[t]   ~ Normal(enc(x[t-1])[0:2], exp(0.5 * enc(x[t-1])[2:4]))
  generate x[T]   ~ Normal(0, 1)
  generate x[t-1] ~ Normal(dec(x[t]), 0.2)
  objective elbo{options}
  train {{ steps = 4, batch = 16, lr = 1e-2, log_every = 1, checkpoint_every = 2 }}
}}
"""

TOKENS = """
model tokens {
  data x : token(3)[4] ~ categorical(probs = [0.2, 0.3, 0.5], n = 100)
  steps T = 2
  schedule alpha(t) = 1 - t/T
  net logits : (token(3)[4], time) -> real[4, 3] = mlp(hidden = [8])
  destroy  x[t]   ~ Shuffle(x[t-1], keep = alpha(t) / alpha(t-1))
  generate x[T]   ~ Categorical(logits = 0)
  generate x[t-1] ~ Guess(x[t], logits)
  objective elbo
}
"""


def compile_vae(steps: int, options: str = "", decide: bool = True) -> object:
    """The tiny VAE, its estimator chosen when ``decide`` (the first batch traces two examples,
    drawing noise)."""
    torch.manual_seed(0)
    model = dtg.loads(VAE.format(steps=steps, options=options)).compile(device="cpu")
    if decide:
        model.objective.estimator(torch.zeros(2, 2))
    return model


def log_normal(value: torch.Tensor, mean: torch.Tensor, std) -> torch.Tensor:
    """log N(value; mean, std²) summed over the last axis, in float64."""
    value, mean = value.double(), mean.double()
    std = torch.as_tensor(std).double()
    z = (value - mean) / std
    return (-0.5 * z**2 - torch.log(std) - 0.5 * math.log(2 * math.pi)).sum(-1)


def reference_terms(model, x: torch.Tensor, seed: int):
    """(rec [B], [KL_1 [B], …, KL_T [B]]) of the tiny VAE, by hand, with the guide's noise."""
    enc, dec = model.nets["enc"], model.nets["dec"]
    steps = model.ir.steps
    torch.manual_seed(seed)
    noise = [torch.randn(x.shape) for _ in range(steps)]  # the guide draws x[1], then x[2], …
    levels, params = [x], []
    for t in range(steps):
        h = enc(levels[-1])
        mean, std = h[:, 0:2], torch.exp(0.5 * h[:, 2:4])
        params.append((mean, std))
        levels.append(mean + std * noise[t])
    rec = -log_normal(x, dec(levels[1]), 0.2)
    if steps == 1:  # analytic KL(N(m, s²) ‖ N(0, 1)), summed over the latent's dimensions
        mean, std = (p.double() for p in params[0])
        return rec, [0.5 * (mean**2 + std**2 - 1 - 2 * torch.log(std)).sum(-1)]
    kls = []
    for t in range(1, steps + 1):
        log_q = log_normal(levels[t], *params[t - 1])
        if t == steps:
            log_p = log_normal(levels[t], torch.zeros_like(levels[t]), 1.0)
        else:
            log_p = log_normal(levels[t], dec(levels[t + 1]), 0.2)
        kls.append(log_q - log_p)
    return rec, kls


def reference_loss(model, x, seed, beta=1.0, free_bits=0.0, weight=None):
    rec, kls = reference_terms(model, x, seed)
    w = beta if weight is None else weight
    return rec.mean() + w * sum(torch.clamp(kl.mean(), min=free_bits) for kl in kls)


@pytest.mark.parametrize("steps", [1, 2])
@pytest.mark.parametrize(
    ("options", "beta", "free_bits"),
    [("(beta = 0.5)", 0.5, 0.0), ("(beta = 2, free_bits = 0.3)", 2.0, 0.3)],
)
def test_loss_equals_the_hand_written_objective(one_thread, steps, options, beta, free_bits):
    model = compile_vae(steps, options)
    x = torch.randn(64, 2, generator=torch.Generator().manual_seed(1))
    torch.manual_seed(7)
    loss = model.loss(x)
    assert model.objective.analytic is (steps == 1)
    reference = reference_loss(model, x, 7, beta, free_bits)
    assert float(loss.detach()) == pytest.approx(reference.item(), rel=1e-5, abs=1e-5)


def test_free_bits_floor_one_level_and_stop_its_gradient(one_thread) -> None:
    model = compile_vae(2, "(beta = 1.5, free_bits = 1)")
    x = torch.randn(64, 2, generator=torch.Generator().manual_seed(2))
    rec, kls = reference_terms(model, x, 3)
    means = [kl.mean().item() for kl in kls]
    assert means[0] > 1 > means[1]  # level 1 is above the floor, level 2 below: one of each
    for net in model.nets.values():
        net.zero_grad()
    torch.manual_seed(3)
    loss = model.loss(x)
    loss.backward()
    got = {n: p.grad.clone() for n, p in model.nets.named_parameters()}
    for net in model.nets.values():
        net.zero_grad()
    by_hand = rec.mean() + 1.5 * (kls[0].mean() + 1.0)  # the floored level is the constant 1
    by_hand.backward()
    assert float(loss.detach()) == pytest.approx(by_hand.item(), rel=1e-5)
    for name, p in model.nets.named_parameters():
        torch.testing.assert_close(got[name], p.grad.float(), rtol=1e-4, atol=1e-6)


def test_warmup_weight_ramps_linearly() -> None:
    # beta = 0.5 over 1000 steps: 0 at the first step, half-way at 500, beta from 1000 on
    for step, expected in [(0, 0.0), (250, 0.125), (500, 0.25), (1000, 0.5), (5000, 0.5)]:
        assert kl_weight(0.5, 1000, step) == pytest.approx(expected, abs=1e-12)
        assert float(kl_weight(0.5, 1000, torch.tensor(step))) == pytest.approx(expected)
    assert kl_weight(0.5, 0, 3) == 0.5


def test_warmup_counts_training_steps_and_weights_the_kl(one_thread, tmp_path) -> None:
    model = compile_vae(1, "(beta = 0.5, kl_warmup = 4)")
    x = torch.randn(32, 2, generator=torch.Generator().manual_seed(4))
    objective = model.objective
    assert int(objective.step) == 0
    for step in range(6):  # the loss at step s weights the KL by 0.5 · min(1, s / 4)
        torch.manual_seed(step)
        with torch.no_grad():
            reference = reference_loss(model, x, step, weight=0.5 * min(1.0, step / 4))
        torch.manual_seed(step)
        loss = model.loss(x)
        assert float(loss.detach()) == pytest.approx(reference.item(), rel=1e-5)
        assert int(objective.step) == step + 1
    model.eval()
    with torch.no_grad():
        model.loss(x)  # evaluation does not advance the warm-up
    assert int(objective.step) == 6
    model.set_step(2)
    assert int(objective.step) == 2
    assert "objective.step" in model.state_dict()


def logged(run) -> list[dict]:
    return [json.loads(line) for line in run.metrics.read_text().splitlines()]


@pytest.mark.parametrize("options", ["", "(beta = 0.5, kl_warmup = 3)"])
def test_training_ramps_the_weight_and_resumes_exactly(one_thread, tmp_path, options) -> None:
    """Steps 1-4 weight the KL by 0.5 · (0, 1/3, 2/3, 1); the warm-up step is in the checkpoint,
    and the estimator's choice (made on the first batch by tracing two examples) draws no noise
    in a resumed run, whose random stream is the checkpoint's."""
    straight = compile_vae(1, options, decide=False)
    run = dtg.train(straight, out=tmp_path / "a", progress=False)
    halves = compile_vae(1, options, decide=False)
    dtg.train(halves, steps=2, out=tmp_path / "b", progress=False)
    resumed = compile_vae(1, options, decide=False)
    again = dtg.train(resumed, steps=4, out=tmp_path / "b", resume=True, progress=False)
    assert again.losses == run.losses[2:]
    for (name, a), (_, b) in zip(
        straight.state_dict().items(), resumed.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name
    if options:
        weights = [line["kl_weight"] for line in logged(run)]
        assert weights == pytest.approx([0.0, 1 / 6, 1 / 3, 0.5])
        assert [line["kl_weight"] for line in logged(again)] == weights
    else:
        assert "kl_weight" not in logged(run)[0]


@pytest.mark.parametrize("source", ["vae", "tokens"])
def test_the_weighted_path_with_default_weights_is_pyros_elbo(one_thread, source) -> None:
    """The weighted loss at beta = 1 has Pyro's value and gradient (score function included)."""
    if source == "vae":
        model = compile_vae(2)
        x = torch.randn(16, 2, generator=torch.Generator().manual_seed(5))
    else:
        torch.manual_seed(0)
        model = dtg.loads(TOKENS).compile(device="cpu")
        x = torch.randint(3, (16, 4), generator=torch.Generator().manual_seed(5))
    objective = model.objective
    assert isinstance(objective, Elbo) and not objective.weighted
    grads = []
    for weighted in (False, True):
        objective.weighted = weighted
        model.zero_grad()
        torch.manual_seed(11)
        loss = model.loss(x)
        loss.backward()
        grads.append(
            (
                float(loss.detach()),
                [p.grad.clone() for p in model.parameters() if p.grad is not None],
            )
        )
    (pyro_loss, pyro_grads), (own_loss, own_grads) = grads
    assert own_loss == pytest.approx(pyro_loss, rel=1e-5)
    assert len(own_grads) == len(pyro_grads) > 0
    for a, b in zip(own_grads, pyro_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_defaults_keep_pyros_loss_and_add_no_state() -> None:
    model = compile_vae(1)
    assert model.ir.objective.options == {
        "particles": 1,
        "beta": None,
        "kl_warmup": None,
        "free_bits": None,
    }
    assert not model.objective.weighted
    assert not any(k.startswith("objective.") for k in model.state_dict())
    assert model.metrics(None) == {}


@pytest.mark.parametrize("steps", [1, 2])
def test_per_level_kl_is_each_levels_mean(one_thread, steps) -> None:
    model = compile_vae(steps)
    x = torch.randn(40, 2, generator=torch.Generator().manual_seed(6))
    torch.manual_seed(9)
    got = model.per_level_kl(x, batch=40)
    _, kls = reference_terms(model, x, 9)
    assert list(got) == [f"kl_level_{t}" for t in range(1, steps + 1)]
    for t, kl in enumerate(kls, start=1):
        assert got[f"kl_level_{t}"] == pytest.approx(kl.mean().item(), rel=1e-5, abs=1e-6)
    with torch.no_grad():
        torch.manual_seed(9)
        nelbo = model.nelbo(x)
    rec, _ = reference_terms(model, x, 9)
    assert float(nelbo.mean()) == pytest.approx((rec + sum(kls)).mean().item(), rel=1e-5)


def test_per_level_kl_is_empty_without_an_elbo() -> None:
    model = dtg.load(EXAMPLES / "ddpm_moons.dtg").compile(device="cpu")
    assert model.per_level_kl(torch.zeros(3, 2)) == {}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("(beta = -1)", "option 'beta' must be ≥ 0"),
        ("(kl_warmup = 2.5)", "option 'kl_warmup' must be a whole number"),
        ("(kl_warmup = -3)", "option 'kl_warmup' must be ≥ 0"),
        ("(free_bits = -0.1)", "option 'free_bits' must be ≥ 0"),
        ("(free_bit = 1)", "has no option 'free_bit'"),
    ],
)
def test_bad_values_are_refused_by_the_checker(options, message) -> None:
    with pytest.raises(DtgError) as caught:
        dtg.loads(VAE.format(steps=1, options=options))
    assert message in caught.value.message
    assert caught.value.span is not None

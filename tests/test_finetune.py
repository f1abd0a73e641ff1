"""Fine-tuning: RTB residual in closed form, PPO-clip, extends resolution, weight loading."""

from __future__ import annotations

import math

import pytest
import torch

import dtg
from dtg.objectives.finetune import ppo_clip_loss, rtb_residual
from dtg.objectives.trajectories import generation_log_probs, sample_trajectories

A = 1.5  # reward log r(x) = -A/2 |x|^2

CHAIN = """
model NAME {
  space x : real[2]
  steps T = 8
  reward r(x) = -0.5 * A * sum(x^2)
  schedule beta(t) = 0.2
  schedule c(t) = C
  destroy x[t] ~ Normal(sqrt(1 - beta(t)) * x[t-1], sqrt(beta(t)))
  generate x[T] ~ Normal(0, sqrt(1 / (1 + c(T))))
  generate x[t-1] ~ Normal(sqrt(1 - beta(t)) * x[t] / (1 + beta(t) * c(t-1)),
                           sqrt(beta(t) / (1 + beta(t) * c(t-1))))
  objective trajectory_balance
}
"""


def chain(name: str, c: str):
    text = CHAIN.replace("NAME", name).replace("C", c).replace(" A ", f" {A} ")
    return dtg.loads(text).compile("cpu").double()


def test_rtb_residual_vanishes_for_the_analytic_posterior_chain() -> None:
    # Prior: the stationary VP chain (c = 0), p0(x0) = N(0, I). Tilting by r(x0) = exp(-A|x0|^2/2)
    # gives a Gaussian path measure whose kernels follow from h_t(x) ∝ exp(-c_t x^2 / 2) with
    # c_0 = A and c_t = c_{t-1} k^2 / (1 + beta c_{t-1}), i.e. c_t = 1 / (k^(-2t) (1/A + 1) - 1).
    prior = chain("prior", "0")
    posterior = chain("posterior", f"1 / ((1 - 0.2)^(-t) * (1 / {A} + 1) - 1)")
    torch.manual_seed(0)
    traj = sample_trajectories(posterior, 512, with_destruction=False)
    log_post = traj.log_start + traj.log_pf.sum(1)
    start, steps = generation_log_probs(prior, traj.states)
    log_prior = start + steps.sum(1)
    log_z = torch.tensor(-math.log(1 + A), dtype=torch.float64)  # E_p0[r] over 2 dims
    residual = rtb_residual(log_z, log_post, log_prior, traj.log_reward, beta=1.0)
    assert residual.abs().max().item() < 1e-8
    # The tilted marginal of x0 is N(0, 1/(1+A)).
    x0 = traj.states[0]
    assert x0.var(0).mean().item() == pytest.approx(1 / (1 + A), rel=0.1)
    # A wrong posterior does not balance.
    wrong = chain("wrong", "0.5")
    traj = sample_trajectories(wrong, 256, with_destruction=False)
    start, steps = generation_log_probs(prior, traj.states)
    residual = rtb_residual(
        log_z, traj.log_start + traj.log_pf.sum(1), start + steps.sum(1), traj.log_reward, 1.0
    )
    assert residual.std().item() > 0.05


def test_ppo_clip_against_hand_written_reference() -> None:
    g = torch.Generator().manual_seed(0)
    log_p_old = torch.randn(6, 3, generator=g)
    log_p = log_p_old + 0.3 * torch.randn(6, 3, generator=g)  # ratios well outside 1 ± clip
    advantages = torch.tensor([1.0, -1.0, 2.0, -0.5, 0.0, 3.0])
    clip = 0.1
    total = 0.0
    clipped_branch_used = False
    for b in range(6):
        for t in range(3):
            ratio = math.exp(float(log_p[b, t] - log_p_old[b, t]))
            a = float(advantages[b])
            plain = -a * ratio
            clipped = -a * min(max(ratio, 1 - clip), 1 + clip)
            total += max(plain, clipped)
            clipped_branch_used |= clipped > plain
    assert clipped_branch_used
    assert ppo_clip_loss(log_p, log_p_old, advantages, clip).item() == pytest.approx(
        total / 18, rel=1e-6
    )


def test_rtb_objective_matches_its_formula(tmp_path) -> None:
    parent = CHAIN.replace("NAME", "base").replace("C", "0").replace(" A ", f" {A} ")
    child = (
        parent
        + """
model tuned extends base {
  reward r2(x) = -sum(x^2)
  objective relative_trajectory_balance(beta = 2)
}
"""
    )
    # A child may add or replace the reward, but not a kernel.
    with pytest.raises(dtg.DtgError, match="cannot replace the destroy kernel"):
        dtg.loads(
            child.replace(
                "objective relative", "destroy x[t] ~ Normal(x[t-1], 1)\n  objective relative"
            )
        )
    model = dtg.loads(child).model("tuned")
    assert model.parent is not None and model.parent.name == "base"
    compiled = dtg.loads(child).compile("cpu", model="tuned").double()
    assert compiled.prior is not None
    with torch.no_grad():
        compiled.objective.log_z.fill_(0.25)
    torch.manual_seed(5)
    loss = compiled.loss(64)
    torch.manual_seed(5)
    traj = sample_trajectories(compiled, 64, with_destruction=False)
    start, steps = generation_log_probs(compiled.prior, traj.states)
    expected = (
        (0.25 + traj.log_start + traj.log_pf.sum(1) - start - steps.sum(1) - 2 * traj.log_reward)
        ** 2
    ).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-9)


def test_extends_across_files_and_weight_loading_errors(tmp_path) -> None:
    (tmp_path / "base.dtg").write_text(
        CHAIN.replace("NAME", "base")
        .replace("C", "0")
        .replace(" A ", " 1 ")
        .replace("steps T = 8", "steps T = 3")
        .replace(
            "generate x[t-1] ~ Normal(",
            "net f : (real[2], time) -> real[2] = mlp(hidden = [4])\n  generate x[t-1] ~ Normal(f(x[t], t) + ",
        )
    )
    child = tmp_path / "child.dtg"
    child.write_text("model child extends base {\n  objective relative_trajectory_balance\n}\n")
    compiled = dtg.load(child).compile("cpu")
    parent = dtg.load(tmp_path / "base.dtg").compile("cpu")
    compiled.init_from_parent(parent.state_dict())
    for name, value in parent.state_dict().items():
        if name.startswith("nets."):
            assert torch.equal(compiled.state_dict()[name], value)
            assert torch.equal(compiled.prior.state_dict()[name], value)
    bad = {k: v for k, v in parent.state_dict().items() if k.startswith("nets.")}
    first = next(iter(bad))
    bad[first] = torch.zeros(3, 3)
    bad["nets.g.weight"] = torch.zeros(1)
    with pytest.raises(dtg.DtgRuntimeError) as info:
        compiled.init_from_parent(bad)
    text = info.value.format()
    assert f"shape of {first}" in text and "not in this model: nets.g.weight" in text
    # An unknown parent file is a located error with the rule in the hint.
    (tmp_path / "orphan.dtg").write_text("model orphan extends nowhere {\n  objective elbo\n}\n")
    with pytest.raises(dtg.DtgError, match="unknown parent model 'nowhere'"):
        dtg.load(tmp_path / "orphan.dtg")


def test_a_grandchild_inherits_every_ancestor_statement() -> None:
    """Statements flow down the whole chain: m2 gets m0's kernels and nets, m1's reward and
    objective, and its own train options."""
    base = CHAIN.replace("NAME", "m0").replace("C", "0").replace(" A ", " 1 ")
    text = base + (
        "model m1 extends m0 {\n  objective vargrad\n  train { steps = 5 }\n}\n"
        "model m2 extends m1 {\n  train { steps = 6, batch = 3 }\n}\n"
    )
    m0, m1, m2 = (dtg.loads(text).model(name) for name in ("m0", "m1", "m2"))
    assert m2.steps == m0.steps == 8
    assert m2.objective.kind == m1.objective.kind != m0.objective.kind
    assert m2.train["steps"] == 6 and m2.train["batch"] == 3 and m1.train["steps"] == 5
    assert m2.reward is not None and m2.destroy.family == m0.destroy.family


def test_a_long_extends_chain_is_a_located_error() -> None:
    base = CHAIN.replace("NAME", "m0").replace("C", "0").replace(" A ", " 1 ")
    links = "".join(
        f"model m{i} extends m{i - 1} {{ train {{ steps = {i} }} }}\n" for i in range(1, 41)
    )
    with pytest.raises(dtg.DtgCheckError, match="chain of more than 32 'extends'") as info:
        dtg.loads(base + links)
    # m32 is the 33rd model of the chain; m1 sits on the line after the base model.
    assert "'m32'" in info.value.message and info.value.span.line == base.count("\n") + 32
    # Declared in reverse order, the same chain is refused without a RecursionError.
    reverse = "".join(reversed(links.splitlines(keepends=True)))
    with pytest.raises(dtg.DtgCheckError, match="'extends'"):
        dtg.loads(reverse + base)


def test_log_z_starts_at_the_first_batch_estimate() -> None:
    """log Z = mean(log p₀ + β log r − log p_θ) of the first batch (the minimiser of the first
    loss), once; with ``log_z_init = zero`` it stays 0."""
    parent = CHAIN.replace("NAME", "base").replace("C", "0").replace(" A ", f" {A} ")
    child = parent + (
        "model tuned extends base {\n  reward r2(x) = -sum(x^2)\n"
        "  objective relative_trajectory_balance(beta = 2)\n}\n"
    )
    compiled = dtg.loads(child).compile("cpu", model="tuned").double()
    torch.manual_seed(5)
    compiled.loss(64)
    torch.manual_seed(5)
    traj = sample_trajectories(compiled, 64, with_destruction=False)
    start, steps = generation_log_probs(compiled.prior, traj.states)
    estimate = start + steps.sum(1) + 2 * traj.log_reward - traj.log_start - traj.log_pf.sum(1)
    assert compiled.objective.log_z.item() == pytest.approx(estimate.mean().item(), rel=1e-9)
    first = compiled.objective.log_z.item()
    compiled.loss(64)  # only the first batch sets it
    assert compiled.objective.log_z.item() == first
    zero = dtg.loads(child.replace("beta = 2", "beta = 2, log_z_init = zero"))
    fixed = zero.compile("cpu", model="tuned").double()
    fixed.loss(8)
    assert fixed.objective.log_z.item() == 0.0

"""Local search for the balance objectives (Sendera et al. 2024): MALA, its step-size rule, the
rank-prioritised buffer, training with ``local_search = true`` and keeping the buffers."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import EXAMPLES

import dtg
import dtg.objectives.balance as balance
from dtg.errors import DtgError
from dtg.objectives.local_search import RankBuffer, adapt_step_size, mala
from dtg.runtime.checkpoint_fit import TRAINING_BUFFERS

# A correlated 2-D Gaussian with known moments.
MEAN = torch.tensor([1.0, -2.0], dtype=torch.float64)
COV = torch.tensor([[2.0, 0.6], [0.6, 0.5]], dtype=torch.float64)
PRECISION = torch.linalg.inv(COV)


def gauss_log_r(x: torch.Tensor) -> torch.Tensor:
    d = x - MEAN
    return -0.5 * ((d @ PRECISION) * d).sum(1)  # unnormalised: MALA needs no log Z


def exact_samples(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, 2, generator=g, dtype=torch.float64)
    return MEAN + z @ torch.linalg.cholesky(COV).T


def assert_gaussian_moments(x: torch.Tensor) -> None:
    """Mean and (centred at the true mean) second moments of iid rows, each within 4 standard
    errors of the truth; Var[(x_i − μ_i)(x_j − μ_j)] = Σ_ii Σ_jj + Σ_ij² for a Gaussian."""
    n = x.shape[0]
    mean = x.mean(0)
    for i in range(2):
        se = math.sqrt(COV[i, i] / n)
        assert abs(mean[i] - MEAN[i]) < 4 * se, (i, float(mean[i]), se)
    d = x - MEAN
    for i in range(2):
        for j in range(i, 2):
            second = (d[:, i] * d[:, j]).mean()
            se = math.sqrt((COV[i, i] * COV[j, j] + COV[i, j] ** 2) / n)
            assert abs(second - COV[i, j]) < 4 * se, (i, j, float(second), float(COV[i, j]), se)


@pytest.mark.parametrize("adapt", [False, True])
def test_mala_leaves_a_gaussian_invariant(adapt: bool) -> None:
    # h = 0.2 is large for the narrow axis (variance 0.29): unadjusted Langevin would inflate it
    # ~1.5× (next test); the Metropolis correction keeps the target exactly.
    torch.manual_seed(0)
    start = exact_samples(20_000, seed=1)
    assert_gaussian_moments(start)
    result = mala(gauss_log_r, start, steps=30, burn_in=10, step_size=0.2, adapt=adapt)
    assert 0.2 < float(result.accept_rate) < 0.99  # the chains did move
    assert not torch.equal(result.x, start)
    assert_gaussian_moments(result.x)
    assert torch.allclose(result.log_r, gauss_log_r(result.x))


def test_the_moment_check_catches_unadjusted_langevin() -> None:
    # Power of the check above: the same steps without the accept/reject do not pass it.
    torch.manual_seed(0)
    x = exact_samples(20_000, seed=1)
    h = 0.2
    for _ in range(30):
        grad = -(x - MEAN) @ PRECISION
        x = x + h * grad + math.sqrt(2 * h) * torch.randn_like(x)
    with pytest.raises(AssertionError):
        assert_gaussian_moments(x)


def test_one_mala_step_equals_the_hand_written_formula() -> None:
    start = exact_samples(500, seed=3)
    h = 0.7
    torch.manual_seed(5)
    result = mala(gauss_log_r, start, steps=1, burn_in=0, step_size=h, adapt=False)
    torch.manual_seed(5)  # the same draws: the proposal noise, then the uniforms
    noise = torch.randn_like(start)
    uniform = torch.rand(start.shape[0])
    expected = start.clone()
    for b in range(start.shape[0]):
        x = start[b]
        grad_x = -PRECISION @ (x - MEAN)
        y = x + h * grad_x + math.sqrt(2 * h) * noise[b]
        grad_y = -PRECISION @ (y - MEAN)
        log_r_x = -0.5 * (x - MEAN) @ PRECISION @ (x - MEAN)
        log_r_y = -0.5 * (y - MEAN) @ PRECISION @ (y - MEAN)
        forward = -((y - x - h * grad_x) ** 2).sum() / (4 * h)  # log q(y | x) + const
        backward = -((x - y - h * grad_y) ** 2).sum() / (4 * h)  # log q(x | y) + const
        ratio = math.exp(min(0.0, float(log_r_y - log_r_x + backward - forward)))
        if uniform[b] < ratio:
            expected[b] = y
    assert torch.allclose(result.x, expected, atol=1e-12)
    moved = (result.x != start).any(1).float().mean()
    assert 0.1 < float(moved) < 0.9  # both outcomes occur
    assert float(result.accept_rate) == pytest.approx(float(moved))


def test_step_size_rule_is_one_percent_toward_the_target() -> None:
    h = torch.tensor(0.1, dtype=torch.float64)
    assert float(adapt_step_size(h, torch.tensor(0.9), 0.574)) == pytest.approx(0.101, rel=1e-15)
    assert float(adapt_step_size(h, torch.tensor(0.2), 0.574)) == pytest.approx(0.099, rel=1e-15)
    # At the target exactly the step shrinks (gfn-diffusion grows only above it).
    assert float(adapt_step_size(h, torch.tensor(0.574), 0.574)) == pytest.approx(0.099)


@pytest.mark.parametrize("start, factor", [(50.0, 0.99), (1e-4, 1.01)])
def test_mala_step_size_moves_one_percent_per_step(start: float, factor: float) -> None:
    # A huge step is (nearly) never accepted: below 0.574 at every measurement, so it shrinks
    # by 1 % at each of the 39 steps after the first; a tiny one is (nearly) always accepted.
    torch.manual_seed(0)
    steps = 40
    result = mala(gauss_log_r, exact_samples(300, seed=2), steps, 0, start, target_accept=0.574)
    expected = start
    for _ in range(steps - 1):
        expected *= factor
    assert float(result.step_size) == pytest.approx(expected, rel=1e-12)
    rate = float(result.accept_rate)
    assert rate < 0.05 if factor < 1 else rate > 0.95


def test_step_size_without_adaptation_stays() -> None:
    result = mala(gauss_log_r, exact_samples(50, seed=2), 20, 0, 50.0, adapt=False)
    assert float(result.step_size) == 50.0


def test_mala_keeps_the_proposals_accepted_after_the_burn_in() -> None:
    # A flat reward: every proposal is accepted (ratio 1), so steps burn_in + 1 … steps − 1
    # keep all B chains each (gfn-diffusion keeps steps i > burn_in).
    torch.manual_seed(0)
    start = torch.zeros(7, 3)
    result = mala(lambda x: torch.zeros(x.shape[0]), start, steps=10, burn_in=3, step_size=0.5)
    assert result.samples.shape == (7 * 6, 3)
    assert float(result.accept_rate) == 1.0
    # The last kept step's proposals are the chains' last states.
    assert torch.equal(result.samples[-7:], result.x)


def test_non_finite_gradients_are_zeroed_and_bad_proposals_rejected() -> None:
    def log_r(x: torch.Tensor) -> torch.Tensor:  # log of a half-plane indicator times N(0, I)
        inside = x[:, 0] > 0
        return torch.where(inside, -0.5 * (x**2).sum(1), torch.full_like(x[:, 0], -math.inf))

    torch.manual_seed(0)
    start = torch.rand(200, 2) + 0.5
    result = mala(log_r, start, steps=20, burn_in=5, step_size=0.3)
    assert torch.isfinite(result.x).all() and (result.x[:, 0] > 0).all()
    assert (result.samples[:, 0] > 0).all() and torch.isfinite(result.samples_log_r).all()


# ----------------------------------------------------------------------------- the rank buffer


def gfn_diffusion_probabilities(scores: np.ndarray, k: float) -> np.ndarray:
    """gfn-diffusion's ReplayBuffer (prioritized = 'rank'): ranks = argsort(argsort(−scores)),
    weights 1 / (k · N + rank), normalised as WeightedRandomSampler does."""
    ranks = np.argsort(np.argsort(-scores))
    weights = 1.0 / (k * len(scores) + ranks)
    return weights / weights.sum()


def test_rank_buffer_probabilities_equal_the_rank_formula() -> None:
    g = torch.Generator().manual_seed(0)
    n = 300
    scores = torch.randn(n, generator=g, dtype=torch.float64) * 5
    buffer = RankBuffer(1000, (2,), rank_weight=0.01)
    buffer.add(torch.arange(n, dtype=torch.float32)[:, None].expand(n, 2), scores)
    expected = gfn_diffusion_probabilities(scores.numpy(), 0.01)
    got = buffer.probabilities().numpy()
    assert np.allclose(got, expected, rtol=1e-6, atol=0)
    # By hand for the best and the worst: 1 / (0.01 · 300 + 0) and 1 / (3 + 299), normalised.
    total = sum(1.0 / (3.0 + r) for r in range(n))
    assert got[int(scores.argmax())] == pytest.approx(1 / 3 / total, rel=1e-6)
    assert got[int(scores.argmin())] == pytest.approx(1 / 302 / total, rel=1e-6)
    # Draws follow those probabilities (each count within 5 binomial standard errors).
    torch.manual_seed(1)
    draws = 200_000
    x, log_r = buffer.sample(draws)
    index = x[:, 0].long()
    assert torch.equal(log_r, scores.float()[index])
    counts = np.bincount(index.numpy(), minlength=n)
    se = np.sqrt(draws * expected * (1 - expected))
    assert np.all(np.abs(counts - draws * expected) < 5 * se + 1)


def test_rank_buffer_keeps_the_newest_and_ranks_what_it_holds() -> None:
    buffer = RankBuffer(4, (1,), rank_weight=0.5)
    buffer.add(torch.tensor([[0.0], [1.0], [2.0]]), torch.tensor([3.0, 1.0, 2.0]))
    buffer.add(torch.tensor([[3.0], [4.0]]), torch.tensor([0.0, 5.0]))  # 0 is replaced
    assert len(buffer) == 4 and buffer.count == 5
    held = {float(v): float(r) for v, r in zip(buffer.rank_x[:, 0], buffer.rank_log_r, strict=True)}
    assert held == {4.0: 5.0, 1.0: 1.0, 2.0: 2.0, 3.0: 0.0}
    # N = 4, k = 0.5: ranks 4.0 → 0, 2.0 → 1, 1.0 → 2, 3.0 → 3; weights 1/(2 + rank).
    weights = {4.0: 1 / 2, 2.0: 1 / 3, 1.0: 1 / 4, 3.0: 1 / 5}
    total = sum(weights.values())
    for value, p in zip(buffer.rank_x[:, 0], buffer.probabilities(), strict=True):
        assert float(p) == pytest.approx(weights[float(value)] / total)
    with pytest.raises(DtgError, match="empty"):
        RankBuffer(3, (1,), 0.01).sample(2)


# ----------------------------------------------------------------------------- training


def gmm25_ls(options: str = "") -> str:
    text = (EXAMPLES / "gmm25_tb.dtg").read_text()
    objective = "objective trajectory_balance(lr_logZ = 0.1)"
    assert objective in text
    settings = "explore = 0.1, local_search = true, ls_every = 4, ls_steps = 20, ls_burn_in = 10"
    text = text.replace(objective, f"objective trajectory_balance({settings}{options})")
    return text.replace("steps T = 100", "steps T = 10")


def test_tb_with_local_search_trains_and_fills_the_buffers() -> None:
    torch.manual_seed(0)
    model = dtg.loads(gmm25_ls(", ls_buffer = 2000")).compile("cpu")
    search = model.objective.local_search
    optimizer = torch.optim.Adam(model.param_groups(1e-3))
    sizes, found = [], []
    for _ in range(10):
        loss = model.loss(32)
        assert torch.isfinite(loss)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        sizes.append(len(search.policy))
        found.append(search.found.count)
    # Even iterations are on-policy (32 terminal states each); odd ones are not.
    assert sizes == [32, 32, 64, 64, 96, 96, 128, 128, 160, 160]
    # Rounds at the odd iterations s with s % 4 < 2: 1, 5, 9; each keeps accepted proposals.
    assert found[0] == 0 and found[1] > 0
    assert found[1] == found[2] == found[3] == found[4] < found[5]
    assert found[5] == found[6] == found[7] == found[8] < found[9]
    metrics = model.metrics(None)
    assert 0 < metrics["ls_accept"] <= 1 and metrics["ls_step_size"] > 0
    assert metrics["ls_buffer"] == min(found[-1], 2000)
    assert all(math.isfinite(v) for v in metrics.values())


@pytest.mark.parametrize("objective", ["vargrad", "subtb", "detailed_balance"])
def test_every_member_of_the_family_trains_with_local_search(objective: str) -> None:
    torch.manual_seed(0)
    text = gmm25_ls().replace("objective trajectory_balance(", f"objective {objective}(")
    model = dtg.loads(text).compile("cpu")
    losses = train_steps(model, 4)
    assert all(math.isfinite(v) for v in losses)
    assert model.objective.local_search.found.count > 0


def test_off_policy_iterations_start_from_local_search_samples(monkeypatch) -> None:
    torch.manual_seed(0)
    model = dtg.loads(gmm25_ls()).compile("cpu")
    objective = model.objective
    model.loss(16)  # step 0: on-policy
    seen = {}
    real = balance.destroy_trajectories

    def spy(model, x0):
        seen["x0"] = x0
        return real(model, x0)

    monkeypatch.setattr(balance, "destroy_trajectories", spy)
    model.loss(16)  # step 1: a round, then destruction trajectories from what it found
    held = objective.local_search.found.rank_x[: len(objective.local_search.found)]
    assert seen["x0"].shape == (16, 2)
    assert all((held == row).all(1).any() for row in seen["x0"])


def test_local_search_options_are_checked() -> None:
    with pytest.raises(DtgError, match="ls_burn_in"):
        dtg.loads(gmm25_ls().replace("ls_burn_in = 10", "ls_burn_in = 19")).compile("cpu")
    with pytest.raises(DtgError):
        dtg.loads(gmm25_ls(", ls_target_accept = 0")).compile("cpu")
    plain = dtg.loads((EXAMPLES / "gmm25_tb.dtg").read_text()).compile("cpu")
    assert plain.objective.local_search is None
    assert not any("rank_" in key for key in plain.state_dict())


def train_steps(model, steps: int, batch: int = 16) -> list[float]:
    optimizer = torch.optim.Adam(model.param_groups(1e-3))
    losses = []
    for _ in range(steps):
        loss = model.loss(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return losses


def test_state_dict_round_trip_keeps_the_buffers() -> None:
    torch.manual_seed(0)
    model = dtg.loads(gmm25_ls(", ls_buffer = 200")).compile("cpu")
    train_steps(model, 6)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    search = model.objective.local_search
    assert len(search.found) == 200 < search.found.count and len(search.policy) == 48
    fresh = dtg.loads(gmm25_ls(", ls_buffer = 200")).compile("cpu")
    assert len(fresh.objective.local_search.found) == 0
    fresh.load_state_dict(state)
    again = fresh.objective.local_search
    assert (again.found.count, again.policy.count) == (search.found.count, search.policy.count)
    for name in ("found", "policy"):
        a, b = getattr(search, name), getattr(again, name)
        assert torch.equal(a.rank_x, b.rank_x) and torch.equal(a.rank_log_r, b.rank_log_r)
        assert torch.equal(a.probabilities(), b.probabilities())
    torch.manual_seed(3)
    expected = train_steps(model, 4)
    torch.manual_seed(3)
    assert train_steps(fresh, 4) == expected


@pytest.mark.skipif(
    not {"rank_x", "rank_log_r", "rank_count"} <= TRAINING_BUFFERS,
    reason="checkpoints keep the rank buffers once TRAINING_BUFFERS lists them",
)
def test_checkpoint_resume_keeps_the_buffers(tmp_path: Path) -> None:
    from dtg.runtime import train

    text = gmm25_ls(", ls_buffer = 400")
    overrides = {"batch": 16, "checkpoint_every": 3, "log_every": 3}
    torch.manual_seed(0)
    straight = dtg.loads(text).compile("cpu")
    whole = train(straight, out=tmp_path / "a", progress=False, steps=8, overrides=overrides)
    torch.manual_seed(0)
    first = dtg.loads(text).compile("cpu")
    train(first, out=tmp_path / "b", progress=False, steps=5, overrides=overrides)
    resumed = dtg.loads(text).compile("cpu")
    second = train(resumed, out=tmp_path / "b", progress=False, steps=8, resume=True,
                   overrides=overrides)  # fmt: skip
    assert whole.losses[5:] == second.losses
    a, b = straight.objective.local_search, resumed.objective.local_search
    assert a.found.count == b.found.count > 0
    assert torch.equal(a.found.rank_x, b.found.rank_x)
    assert torch.equal(a.policy.rank_x, b.policy.rank_x)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("local_search = true, ls_steps = 50, ls_burn_in = 60", "none are left"),
        ("local_search = true, ls_steps = 101", "none are left"),
    ],
)
def test_the_checker_refuses_local_search_that_keeps_nothing(options: str, message: str) -> None:
    text = (
        (EXAMPLES / "gmm25_tb.dtg")
        .read_text()
        .replace("lr_logZ = 0.1", f"lr_logZ = 0.1, {options}")
    )
    with pytest.raises(DtgError) as caught:
        dtg.loads(text)
    assert message in str(caught.value) and caught.value.span.line == 16


TOKEN_SAMPLER = """
model tokens {
  space x : token(3)[2]
  steps T = 2
  reward logr(x) = classify_free(x)
  net logits : (token(3)[2], time) -> real[2, 3] = mlp(hidden = [16])
  destroy  x[t]   ~ Shuffle(x[t-1], keep = 1/2)
  generate x[T]   ~ Categorical(logits = 0)
  generate x[t-1] ~ Guess(x[t], logits)
  objective trajectory_balance(local_search = true)
}
"""


def test_the_checker_refuses_local_search_on_tokens() -> None:
    dtg.register_reward("classify_free", lambda x: x.float().sum(-1))
    try:
        with pytest.raises(DtgError) as caught:
            dtg.loads(TOKEN_SAMPLER)
    finally:
        from dtg import plugins

        plugins.unregister_reward("classify_free")
    assert "local_search needs a real space" in str(caught.value)
    assert caught.value.span.line == 10

"""Fine-tuning masked diffusion: exact trajectory scores, order-free scores, GRPO (issue 22).

On token(3)[3], T = 3, a Mask parent and a child fine-tuned toward a plug-in reward:

* the exact trajectory log-probability equals the product of per-level SUBS probabilities
  written out by hand;
* ``diffu_grpo``'s score equals its closed form (one pass on the fully masked sample), and
  ``coupled``'s expectation equals its closed form by enumeration of levels and masks — and
  both differ from the exact log-likelihood log p(x0) (enumerated over trajectories);
* GRPO's advantages and loss equal a hand-written group-normalised PPO-clip; PPO's old and
  new scores use the same masks (the first epoch's ratios are exactly 1).
"""

from __future__ import annotations

import itertools
import math
import statistics
import warnings

import pytest
import torch

import dtg
from dtg.ir.options import Scoring
from dtg.objectives.finetune import group_advantages, ppo_clip_loss
from dtg.objectives.scoring import order_free_log_probs, score_masks
from dtg.objectives.trajectories import generation_log_probs, sample_trajectories
from dtg.plugins import unregister_reward

V, L, T = 3, 3, 3
MASK = V
ALPHA = [1 - t / T for t in range(T + 1)]
ALPHAS = {"linear": ALPHA, "cosine": [math.cos(math.pi / 2 * t / T) ** 2 for t in range(T + 1)]}
SCHEDULES = {"linear": "1 - t / T", "cosine": "cos(pi / 2 * t / T)^2"}

TEXT = """
model base {
  data x : token(3)[3] ~ categorical(probs = [0.5, 0.3, 0.2])
  steps T = 3
  schedule alpha(t) = 1 - t / T
  net logits : (token(3)[3], time) -> real[3, 3] = mlp(hidden = [8])
  destroy  x[t]   ~ Mask(x[t-1], keep = alpha(t) / alpha(t-1))
  generate x[T]   = masked
  generate x[t-1] ~ Guess(x[t], logits)
  objective masking
}
model tuned extends base {
  reward r(x) = low_tokens(x)
  objective OBJECTIVE
}
"""


@pytest.fixture(autouse=True)
def low_tokens():
    dtg.register_reward("low_tokens", lambda x: -x.double().mean(dim=1))
    yield
    unregister_reward("low_tokens")


def child(objective: str = "policy_gradient", schedule: str = "linear"):
    torch.manual_seed(0)
    text = TEXT.replace("OBJECTIVE", objective).replace("1 - t / T", SCHEDULES[schedule])
    return dtg.loads(text).compile("cpu", model="tuned").double()


def net_probs(model, xt: tuple, t: int) -> list[list[float]]:
    with torch.no_grad():
        logits = model.nets["logits"](torch.tensor([xt]), torch.tensor([t / T]).double())[0]
    return torch.softmax(logits, -1).tolist()


def hand_step(model, xt: tuple, prev: tuple, t: int) -> float:
    """SUBS: carry unmasked; unmask w.p. r_t = (α_{t-1} − α_t)/(1 − α_t) to softmax(logits)."""
    rate = (ALPHA[t - 1] - ALPHA[t]) / (1 - ALPHA[t])
    probs = net_probs(model, xt, t)
    p = 1.0
    for i, (a, b) in enumerate(zip(xt, prev, strict=True)):
        if a != MASK:
            p *= 1.0 if b == a else 0.0
        else:
            p *= (1 - rate) if b == MASK else rate * probs[i][b]
    return p


def exact_log_likelihood(model, x0: tuple) -> float:
    """log p(x0) = log Σ over every generation trajectory ending at x0 (enumerated)."""
    states = list(itertools.product(range(V + 1), repeat=L))
    paths = {(MASK,) * L: 1.0}
    for t in range(T, 0, -1):
        following: dict[tuple, float] = {}
        for xt, p in paths.items():
            for prev in states:
                step = hand_step(model, xt, prev, t)
                if step > 0:
                    following[prev] = following.get(prev, 0.0) + p * step
        paths = following
    return math.log(paths.get(x0, 0.0))


def test_trajectory_log_probability_is_the_product_of_hand_steps() -> None:
    model = child()
    torch.manual_seed(1)
    with torch.no_grad():
        traj = sample_trajectories(model, 6, with_destruction=False)
        _, log_steps = generation_log_probs(model, traj.states)
    for b in range(6):
        chain = [tuple(int(v) for v in s[b].tolist()) for s in traj.states]
        expected = sum(
            math.log(hand_step(model, chain[t], chain[t - 1], t)) for t in range(1, T + 1)
        )
        assert float(log_steps[b].sum()) == pytest.approx(expected, abs=1e-6)


def test_diffu_grpo_is_one_pass_on_the_fully_masked_sample() -> None:
    model = child()
    x0 = (2, 0, 1)
    masks = score_masks(Scoring.DIFFU_GRPO, model, torch.tensor([x0]))
    with torch.no_grad():
        got = order_free_log_probs(model.generate, torch.tensor([x0]), masks)[0]
    probs = net_probs(model, (MASK,) * L, T)
    expected = [math.log(probs[i][x0[i]]) for i in range(L)]
    assert got.tolist() == pytest.approx(expected, abs=1e-6)
    exact = exact_log_likelihood(model, x0)
    assert abs(sum(expected) - exact) > 1e-3  # a different quantity from log p(x0)


def coupled_closed_form(model, x0: tuple, alpha: list[float]) -> float:
    """E_t E_M [Σ_{i∈M} log p̂(x0_i | M masked, t) + Σ_{i∉M} log p̂(x0_i | ¬M masked, s)], s the
    level whose masked share 1 − α_s is nearest α_t (the complement's)."""
    total = 0.0
    for t in range(1, T + 1):
        other = min(range(1, T + 1), key=lambda s: abs((1 - alpha[s]) - alpha[t]))
        for hidden in itertools.product((False, True), repeat=L):
            prob = math.prod((1 - alpha[t]) if h else alpha[t] for h in hidden)
            if prob == 0:
                continue
            first = tuple(MASK if h else v for v, h in zip(x0, hidden, strict=True))
            second = tuple(v if h else MASK for v, h in zip(x0, hidden, strict=True))
            p1, p2 = net_probs(model, first, t), net_probs(model, second, other)
            score = sum(
                math.log(p1[i][x0[i]]) if hidden[i] else math.log(p2[i][x0[i]]) for i in range(L)
            )
            total += prob * score / T
    return total


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_coupled_expectation_equals_its_closed_form(schedule: str) -> None:
    model = child(schedule=schedule)
    x0 = (0, 2, 1)
    n = 40_000
    batch = torch.tensor([x0]).repeat(n, 1)
    torch.manual_seed(3)
    masks = score_masks(Scoring.COUPLED, model, batch)
    first, second = masks[0][0], masks[1][0]
    assert bool((first ^ second).all())  # complementary: every token scored exactly once
    with torch.no_grad():
        scores = order_free_log_probs(model.generate, batch, masks).sum(1)
    expected = coupled_closed_form(model, x0, ALPHAS[schedule])
    se = float(scores.std()) / math.sqrt(n)
    assert abs(float(scores.mean()) - expected) < 4 * se
    assert abs(expected - exact_log_likelihood(model, x0)) > 10 * se  # not log p(x0)


def test_grpo_loss_equals_a_hand_written_group_ppo() -> None:
    rewards = torch.tensor([1.0, 2.0, 4.0, 0.0, 5.0, 5.0, 6.0, 8.0])
    group = 4
    hand = []
    for g in range(0, 8, group):
        chunk = rewards[g : g + group].tolist()
        mean = sum(chunk) / group
        std = math.sqrt(sum((r - mean) ** 2 for r in chunk) / (group - 1))
        hand += [(r - mean) / (std + 1e-8) for r in chunk]
    advantages = group_advantages(rewards, group)
    assert advantages.tolist() == pytest.approx(hand, rel=1e-6)
    gen = torch.Generator().manual_seed(0)
    old = torch.randn(8, 3, generator=gen)
    new = old + 0.3 * torch.randn(8, 3, generator=gen)
    clip, total = 0.1, 0.0
    for b in range(8):
        for k in range(3):
            ratio = math.exp(float(new[b, k] - old[b, k]))
            total += max(-hand[b] * ratio, -hand[b] * min(max(ratio, 1 - clip), 1 + clip))
    assert ppo_clip_loss(new, old, advantages, clip).item() == pytest.approx(total / 24, rel=1e-6)


@pytest.mark.parametrize("scoring", ["coupled", "diffu_grpo"])
def test_ppo_uses_the_same_masks_for_old_and_new(scoring: str) -> None:
    model = child(f"policy_gradient(advantage = group, group = 4, scoring = {scoring})")
    torch.manual_seed(4)
    loss = model.loss(8)  # first epoch: the policy that sampled is the current one
    _, _, advantages, _, masks = model.objective._cache
    assert masks is not None
    # ratio 1 everywhere: the surrogate is −mean over (sample, token) of A_b
    assert loss.item() == pytest.approx(-float(advantages.mean()), abs=1e-9)
    loss.backward()
    assert any(
        p.grad is not None and p.grad.abs().sum() > 0 for p in model.nets["logits"].parameters()
    )


def test_rtb_with_an_order_free_score_scores_both_chains_alike() -> None:
    model = child("relative_trajectory_balance(scoring = coupled, replay = 8)")
    x0 = torch.tensor([[0, 1, 2], [2, 2, 1], [1, 0, 0]])
    torch.manual_seed(5)
    masks = score_masks(Scoring.COUPLED, model, x0)
    # the child starts as a copy of its prior (as --init does), both scored on the same passes
    model.nets["logits"].load_state_dict(model.prior.nets["logits"].state_dict())
    post, prior = model.objective._order_free(x0, masks)
    assert torch.equal(post.detach(), prior)
    with torch.no_grad():
        next(model.nets["logits"].parameters()).add_(0.1)  # the child moves; the prior does not
    post, prior = model.objective._order_free(x0, masks)
    assert not torch.allclose(post.detach(), prior)
    for _ in range(3):  # on-policy, then with replayed samples run backward
        loss = model.loss(6)
        assert torch.isfinite(loss)
        loss.backward()


def test_order_free_scoring_needs_mask_destruction() -> None:
    text = TEXT.replace("OBJECTIVE", "policy_gradient(scoring = coupled)").replace(
        "destroy  x[t]   ~ Mask(x[t-1], keep = alpha(t) / alpha(t-1))",
        "destroy  x[t]   ~ MashRandom(x[t-1])",
    )
    with pytest.raises(dtg.DtgObjectiveError, match="needs Mask destruction") as info:
        dtg.loads(text)
    line = text.splitlines()[info.value.span.line - 1]
    assert line[info.value.span.column - 1 :].startswith("scoring = coupled")


def test_a_batch_that_is_not_a_multiple_of_the_group_ends_with_a_smaller_group() -> None:
    rewards = torch.tensor([1.0, 3.0, 2.0, 6.0, 5.0, 9.0, 4.0])
    got = group_advantages(rewards, 3).tolist()
    # groups (1, 3, 2), (6, 5, 9) and the remainder (4,): a group of one has advantage 0
    assert got[:3] == pytest.approx([-1.0, 1.0, 0.0], rel=1e-6)
    mean, std = statistics.mean([6.0, 5.0, 9.0]), statistics.stdev([6.0, 5.0, 9.0])
    assert got[3:6] == pytest.approx([(r - mean) / std for r in (6.0, 5.0, 9.0)], rel=1e-6)
    assert got[6] == 0.0
    model = child("policy_gradient(advantage = group, group = 4)")
    assert torch.isfinite(model.loss(6))


def test_a_batch_smaller_than_the_group_is_one_group() -> None:
    rewards = torch.tensor([1.0, 2.0, 6.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no empty group (a std of nothing warns)
        got = group_advantages(rewards, 8).tolist()
    mean, std = statistics.mean([1.0, 2.0, 6.0]), statistics.stdev([1.0, 2.0, 6.0])
    assert got == pytest.approx([(r - mean) / std for r in (1.0, 2.0, 6.0)], rel=1e-6)

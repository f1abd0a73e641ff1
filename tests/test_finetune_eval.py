"""Fine-tuning metrics (dtg.runtime.finetune_eval) against hand computations."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import torch
from conftest import SMALL_SAMPLER

import dtg
from dtg.runtime.finetune_eval import evaluate_finetune, mean_pairwise_distance, rewarded_classes

BASE = (
    SMALL_SAMPLER
    + """model child extends base {
  objective relative_trajectory_balance
}
"""
)


def test_mean_pairwise_distance_against_a_loop() -> None:
    x = torch.randn(7, 3, 2, generator=torch.Generator().manual_seed(0))
    flat = x.reshape(7, -1).double()
    pairs = [float((flat[i] - flat[j]).norm()) for i, j in itertools.permutations(range(7), 2)]
    expected = sum(pairs) / len(pairs) / math.sqrt(6)
    assert abs(mean_pairwise_distance(x, chunk=3) - expected) < 1e-9


def test_rewarded_classes_are_read_from_the_reward() -> None:
    examples = Path(__file__).resolve().parent.parent / "examples"
    even = dtg.load(examples / "rtb_even_digits.dtg").model()
    assert rewarded_classes(even.reward.body) == [0, 2, 4, 6, 8]
    assert rewarded_classes(dtg.loads(BASE).model("base").reward.body) is None


def test_finetune_figures_match_hand_computations() -> None:
    program = dtg.loads(BASE)
    model = program.compile("cpu", model="child")
    parent = program.compile("cpu", model="base")
    model.init_from_parent(parent.state_dict())
    figures = evaluate_finetune(model, n=400, seed=3)
    torch.manual_seed(3)  # the draws evaluate_finetune makes, in its order
    posterior, prior = model.sample(400), model.prior.sample(400)
    assert abs(figures["reward_mean"] - float((-0.5 * posterior.pow(2).sum(1)).mean())) < 1e-6
    assert abs(figures["prior_reward_mean"] - float((-0.5 * prior.pow(2).sum(1)).mean())) < 1e-6
    assert abs(figures["diversity"] - mean_pairwise_distance(posterior)) < 1e-9
    assert "fraction_rewarded" not in figures  # not a classify reward
    same = figures["mmd_to_prior"]
    # Move the posterior away from the prior: its distance to the prior grows past the floor.
    with torch.no_grad():
        model.nets["f"].body[-1].bias.add_(3.0)
    moved = evaluate_finetune(model, n=400, seed=3)
    assert moved["mmd_to_prior"] > 10 * max(same, moved["mmd_prior_to_prior"], 1e-4)
    assert moved["prior_reward_mean"] == figures["prior_reward_mean"]

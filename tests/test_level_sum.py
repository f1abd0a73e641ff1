"""The level sum of a NELBO, exact or from K sampled levels (:mod:`dtg.objectives.level_sum`).

The reference is written out: ``Σₜ f(x, t)`` by a Python loop; inclusion probabilities K / T
counted over many rows.
"""

from __future__ import annotations

import math

import pytest
import torch

from dtg.objectives.level_sum import level_sum, levels_drawn


def term(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return x.sum(dim=1) * t.double() ** 2 + torch.sin(t.double())


@pytest.mark.device
def test_every_level_is_the_exact_sum(device) -> None:
    x0 = torch.tensor([[1.0, 2.0], [-0.5, 0.0], [3.0, 1.0]], dtype=torch.float64, device=device)
    steps = 7
    expected = [sum(float(r.sum()) * t**2 + math.sin(t) for t in range(1, steps + 1)) for r in x0]
    expected = torch.tensor(expected, dtype=torch.float64, device=device)
    for chunk in (1, 6, 10_000):  # levels batched one, two or all at a time
        got = level_sum(term, x0, steps, levels=0, chunk=chunk)
        assert got.device == x0.device and torch.allclose(got, expected)
    assert torch.allclose(level_sum(term, x0, steps, levels=steps), got)  # K = T: every level


@pytest.mark.device
def test_sampled_levels_are_distinct_uniform_and_unbiased(device) -> None:
    torch.manual_seed(0)
    batch, steps, k = 40_000, 6, 2
    drawn = levels_drawn(batch, steps, k, device)
    assert drawn.shape == (k, batch)
    assert torch.all(drawn[0] != drawn[1]) and drawn.min() == 1 and drawn.max() == steps
    share = torch.bincount(drawn.flatten(), minlength=steps + 1)[1:] / batch
    # P(t in set) = K/T; 0.01 is 4 standard errors (√(1/3 · 2/3 / 40000) = 0.0024)
    assert torch.allclose(share, torch.full((steps,), k / steps, device=device), atol=0.01)
    x0 = torch.tensor([[0.5, 1.0]], dtype=torch.float64, device=device).repeat(batch, 1)
    exact = float(level_sum(term, x0[:1], steps)[0])
    estimate = level_sum(term, x0, steps, levels=k)
    assert abs(float(estimate.mean()) - exact) < 4 * float(estimate.std()) / math.sqrt(batch)
    assert float(estimate.std()) > 1.0  # a real estimate, not the sum again

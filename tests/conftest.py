"""Shared test helpers: paths, and the golden-error harness."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
BAD = ROOT / "tests" / "bad"

#: A 3-step sampler with a learned Normal generation chain, for fine-tuning tests: add a child.
SMALL_SAMPLER = """
model base {
  space x : real[2]
  steps T = 3
  reward r(x) = -0.5 * sum(x^2)
  schedule beta(t) = 0.2
  net f : (real[2], time) -> real[2] = mlp(hidden = [4])
  destroy x[t] ~ Normal(sqrt(1 - beta(t)) * x[t-1], sqrt(beta(t)))
  generate x[T] ~ Normal(0, 1)
  generate x[t-1] ~ Normal(f(x[t], t), 0.5)
  objective trajectory_balance
}
"""


def example_paths() -> list[Path]:
    return sorted(EXAMPLES.glob("*.dtg"))


@pytest.fixture
def root() -> Path:
    return ROOT


@pytest.fixture
def one_thread():
    """One torch thread: small nets run faster and steadier on a shared 2-core machine, and
    reductions round as when the regression record was made (threads split them differently)."""
    import torch  # heavy: only the tests that ask for this fixture need torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

"""Shared test helpers: paths, and the golden-error harness."""

from __future__ import annotations

import re
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


def moons_model(
    name: str = "tiny", beta: str = "0.1", data: str = "moons(n = 400)", train: str = ""
) -> str:
    """A 4-level Gaussian diffusion of 2-D toy data with a tiny MLP (the run-level tests' model:
    held-out curves, compare, export); ``train`` goes inside ``train { batch = 16, … }``."""
    return f"""model {name} {{
  data x : real[2] ~ {data}
  steps T = 4
  schedule beta(t) = {beta}
  net eps : (real[2], time) -> real[2] = mlp(hidden = [16])
  destroy x[t] ~ Normal(sqrt(1 - beta(t)) * x[t-1], sqrt(beta(t)))
  generate x[T] ~ Normal(0, 1)
  generate x[t-1] ~ Guess(x[t], eps)
  objective denoising(weight = elbo)
  train {{ batch = 16, {train} }}
}}
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


_ATTR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|<(?:[^<>]|<[^<>]*>)*>|[^\s\]]+)')
_EDGE = re.compile(r"^\s*(\w+) -> (\w+) \[(.*)\]$")
_NODE = re.compile(r"^\s*(\w+) \[(.*)\]$")


def _attrs(text: str) -> dict[str, str]:
    return {k: v.strip('"') for k, v in _ATTR.findall(text)}


def parse_dot(source: str) -> tuple[dict[str, dict], list[tuple[str, str, dict]]]:
    """Nodes (id -> attributes) and edges (tail, head, attributes) of a DOT text (the render
    tests read diagrams with it)."""
    nodes, edges = {}, []
    for line in source.splitlines():
        if m := _EDGE.match(line):
            edges.append((m[1], m[2], _attrs(m[3])))
        elif (m := _NODE.match(line)) and m[1] not in ("node", "edge", "graph"):
            nodes[m[1]] = _attrs(m[2])
    return nodes, edges

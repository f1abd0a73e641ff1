"""The uniform one-at-a-time order, ``x[t] ~ MashRandom(x[t-1])``, against enumeration.

On token(3)[3], T = 3: the masking loss's expectation equals the exact negative ELBO computed
by enumerating every destruction trajectory with hand-written kernels (q picks one of the
L − t + 1 unmasked positions, p reveals one of the t masked ones with the net's softmax there);
the channels' log-probabilities equal those hand kernels; the marginal masks a uniformly random
set of t positions; generation reveals a uniformly chosen masked position.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter

import pytest
import torch

import dtg

V, L, T = 3, 3, 3
MASK = V

MODEL = """
model order {
  data x : token(3)[3] ~ categorical(probs = [0.5, 0.3, 0.2])
  steps T = 3
  net logits : (token(3)[3], time) -> real[3, 3] = mlp(hidden = [8])
  destroy  x[t]   ~ MashRandom(x[t-1])
  generate x[T]   = masked
  generate x[t-1] ~ Guess(x[t], logits)
  objective masking
}
"""


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return dtg.loads(MODEL).compile("cpu").double()


def hand_q(prev: tuple, nxt: tuple) -> float:
    """One unmasked position of ``prev`` masked, each with probability 1/#unmasked."""
    unmasked = [i for i, v in enumerate(prev) if v != MASK]
    changed = [i for i in range(L) if prev[i] != nxt[i]]
    if len(changed) != 1 or changed[0] not in unmasked or nxt[changed[0]] != MASK:
        return 0.0
    return 1.0 / len(unmasked)


def hand_p(xt: tuple, prev: tuple, t: int, net) -> float:
    """One masked position of ``xt`` revealed (1/#masked) with the net's softmax there."""
    masked = [i for i, v in enumerate(xt) if v == MASK]
    changed = [i for i in range(L) if xt[i] != prev[i]]
    if len(changed) != 1 or changed[0] not in masked or prev[changed[0]] == MASK:
        return 0.0
    with torch.no_grad():
        logits = net(torch.tensor([xt]), torch.tensor([t / T], dtype=torch.float64))[0]
    i = changed[0]
    return torch.softmax(logits[i], -1)[prev[i]].item() / len(masked)


def brute_force_nelbo(x0: tuple, net) -> float:
    states = list(itertools.product(range(V + 1), repeat=L))
    paths = [([x0], 1.0)]
    for _ in range(T):
        paths = [
            ([*chain, nxt], q * hand_q(chain[-1], nxt))
            for chain, q in paths
            for nxt in states
            if hand_q(chain[-1], nxt) > 0
        ]
    assert len(paths) == math.factorial(L)  # one trajectory per order
    total = 0.0
    for chain, q in paths:
        p = math.prod(hand_p(chain[t], chain[t - 1], t, net) for t in range(1, T + 1))
        total += q * (math.log(q) - math.log(p))
    return total


def loss_expectation(model, x0: tuple) -> float:
    """E over levels (uniform) and uniformly random masked sets of size t of T · L_t."""
    total = 0.0
    for t in range(1, T + 1):
        subsets = list(itertools.combinations(range(L), t))
        for hidden in subsets:
            xt = tuple(MASK if i in hidden else v for i, v in enumerate(x0))
            term = model.objective.level_loss(
                torch.tensor([x0]), torch.tensor([xt]), torch.tensor([t])
            )
            total += T * term.item() / len(subsets)
    return total / T


def test_loss_is_the_exact_nelbo(model) -> None:
    for x0 in [(0, 1, 2), (2, 2, 0), (1, 1, 1)]:
        expected = brute_force_nelbo(x0, model.nets["logits"])
        assert loss_expectation(model, x0) == pytest.approx(expected, abs=1e-6)


def test_channel_log_probs_equal_the_hand_kernels(model) -> None:
    net = model.nets["logits"]
    pairs = [((0, 1, 2), (0, MASK, 2)), ((0, MASK, 2), (MASK, MASK, 2)), ((0, 1, 2), (0, 1, 2))]
    pairs += [((0, 1, 2), (MASK, MASK, 2)), ((0, MASK, 2), (0, MASK, MASK))]
    for prev, nxt in pairs:
        t = sum(v == MASK for v in nxt)
        q = model.destroy.log_prob(torch.tensor([nxt]), torch.tensor([prev]), torch.tensor([t]))
        expected = hand_q(prev, nxt)
        assert float(q.exp()) == pytest.approx(expected, abs=1e-7)
        with torch.no_grad():
            p = model.generate.log_prob(
                torch.tensor([prev]), torch.tensor([nxt]), torch.tensor([max(t, 1)])
            )
        # the runtime passes the time t / T in float32: agreement to its rounding
        assert float(p.exp()) == pytest.approx(hand_p(nxt, prev, max(t, 1), net), abs=1e-6)


def test_marginal_masks_a_uniform_set_of_t_positions(model) -> None:
    n, t = 30_000, 2
    torch.manual_seed(1)
    xt = model.destroy.marginal(torch.zeros(n, L, dtype=torch.long), torch.full((n,), t))
    masked = [tuple(row) for row in (xt == MASK).tolist()]
    assert all(sum(row) == t for row in masked)
    counts = Counter(masked)
    assert len(counts) == math.comb(L, t)
    for count in counts.values():  # each of the 3 sets w.p. 1/3
        assert abs(count / n - 1 / 3) < 4 * math.sqrt((1 / 3) * (2 / 3) / n)


def test_generation_reveals_a_uniform_masked_position(model) -> None:
    n = 30_000
    xt = torch.tensor([[MASK, 1, MASK]]).repeat(n, 1)
    torch.manual_seed(2)
    with torch.no_grad():
        prev = model.generate.sample(xt, torch.full((n,), 2))
    revealed = (prev != MASK) & (xt == MASK)
    assert bool((revealed.sum(1) == 1).all()) and bool((prev[:, 1] == 1).all())
    share = revealed[:, 0].double().mean().item()
    assert abs(share - 0.5) < 4 * math.sqrt(0.25 / n)

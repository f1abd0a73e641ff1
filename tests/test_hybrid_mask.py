"""Hybrid noising, ``Mask(x[t-1], keep = k, redraw = r)``: absorbing and uniform destruction.

Against hand-written kernels on token(3)[2], T = 3: the marginal α δ(x0) + β Uniform +
(1 − α − β) δ([MASK]) with α = a c, β = a (1 − c) (a = ∏ keep, c = ∏ (1 − redraw)); the
masking loss's expectation equals the exact negative ELBO enumerated over every destruction
trajectory (shared and per-position schedules); the generation step is the posterior at the
net's x̂[0] and can change an unmasked token.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch

import dtg

V, L, T = 3, 2, 3
MASK = V

MODEL = """
model hy {{
  data x : token(3)[2] ~ categorical(probs = [0.5, 0.3, 0.2])
  steps T = 3
  schedule a(t, i) = {alpha}
  net logits : (token(3)[2], time) -> real[2, 3] = mlp(hidden = [8])
  destroy  x[t]   ~ Mask(x[t-1], keep = a(t, i) / a(t-1, i), redraw = {redraw})
  generate x[T]   = masked
  generate x[t-1] ~ Guess(x[t], logits)
  objective masking
}}
"""
CASES = {
    "shared": ("1 - t / T", "0.2 + 0.1 * t", lambda t, i: 1 - t / T, lambda t, i: 0.2 + 0.1 * t),
    "per_position": (
        "(1 - t / T) ^ (1 + i)",
        "0.1 + 0.3 * i * t / T",
        lambda t, i: (1 - t / T) ** (1 + i),
        lambda t, i: 0.1 + 0.3 * i * t / T,
    ),
}


def compiled(case: str):
    alpha, redraw, _, _ = CASES[case]
    torch.manual_seed(0)
    return dtg.loads(MODEL.format(alpha=alpha, redraw=redraw)).compile("cpu").double()


class Hand:
    """The chain written out per position from the case's a(t, i) and redraw(t, i)."""

    def __init__(self, case: str) -> None:
        _, _, a, r = CASES[case]
        self.a, self.r = a, r

    def keep(self, t: int, i: int) -> float:
        return self.a(t, i) / self.a(t - 1, i)

    def never(self, t: int, i: int) -> float:  # c_t = ∏_{k ≤ t} (1 − r_k)
        return math.prod(1 - self.r(k, i) for k in range(1, t + 1))

    def step(self, prev: int, nxt: int, t: int, i: int) -> float:
        if prev == MASK:
            return 1.0 if nxt == MASK else 0.0
        k, r = self.keep(t, i), self.r(t, i)
        if nxt == MASK:
            return 1 - k
        return k * (1 - r) * (nxt == prev) + k * r / V

    def marginal(self, x0: int, value: int, t: int, i: int) -> float:
        a = self.a(t, i)
        alpha, beta = a * self.never(t, i), a * (1 - self.never(t, i))
        if value == MASK:
            return 1 - a
        return alpha * (value == x0) + beta / V

    def generate(self, xt: tuple, prev: tuple, t: int, net) -> float:
        """p(x[t-1] | x[t]) ∝ q(x[t] | x[t-1] = j) Σ_{x0} q(x[t-1] = j | x0) p̂(x0 | x[t])."""
        with torch.no_grad():
            logits = net(torch.tensor([xt]), torch.tensor([t / T], dtype=torch.float64))[0]
        probs = torch.softmax(logits, -1).tolist()
        p = 1.0
        for i in range(L):
            weights = [
                self.step(j, xt[i], t, i)
                * sum(self.marginal(x0, j, t - 1, i) * probs[i][x0] for x0 in range(V))
                for j in range(V + 1)
            ]
            p *= weights[prev[i]] / sum(weights)
        return p


def brute_force_nelbo(hand: Hand, x0: tuple, net) -> float:
    states = list(itertools.product(range(V + 1), repeat=L))
    paths = [([x0], 1.0)]
    for t in range(1, T + 1):

        def step(a: tuple, b: tuple, t: int = t) -> float:
            return math.prod(hand.step(a[i], b[i], t, i) for i in range(L))

        paths = [
            ([*chain, nxt], q * step(chain[-1], nxt))
            for chain, q in paths
            for nxt in states
            if step(chain[-1], nxt) > 0
        ]
    total = 0.0
    for chain, q in paths:
        assert chain[T] == (MASK,) * L
        p = math.prod(hand.generate(chain[t], chain[t - 1], t, net) for t in range(1, T + 1))
        total += q * (math.log(q) - math.log(p))
    return total


def loss_expectation(model, hand: Hand, x0: tuple) -> float:
    total = 0.0
    for t in range(1, T + 1):
        for xt in itertools.product(range(V + 1), repeat=L):
            prob = math.prod(hand.marginal(x0[i], xt[i], t, i) for i in range(L))
            if prob == 0:
                continue
            term = model.objective.level_loss(
                torch.tensor([x0]), torch.tensor([xt]), torch.tensor([t])
            )
            prior = float(model.objective.prior(torch.tensor([x0])))
            total += prob * (T * term.item() + prior)
    return total / T


@pytest.mark.parametrize("case", list(CASES))
def test_marginal_matches_the_hand_mixture(case: str) -> None:
    model, hand = compiled(case), Hand(case)
    x0 = torch.tensor([[0, 2]])
    for t in range(T + 1):
        got = model.destroy.marginal_log_probs(x0, torch.tensor([t])).exp()[0]
        for i in range(L):
            expected = [hand.marginal(int(x0[0, i]), v, t, i) for v in range(V + 1)]
            assert got[i].tolist() == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("case", list(CASES))
def test_hybrid_loss_is_the_exact_nelbo(case: str) -> None:
    model, hand = compiled(case), Hand(case)
    for x0 in [(0, 1), (2, 2), (1, 0)]:
        expected = brute_force_nelbo(hand, x0, model.nets["logits"])
        assert loss_expectation(model, hand, x0) == pytest.approx(expected, abs=1e-6)


def test_generation_can_change_an_unmasked_token() -> None:
    model, hand = compiled("shared"), Hand("shared")
    xt, t = (1, MASK), 2
    with torch.no_grad():
        log_p = model.generate.log_probs(torch.tensor([xt]), torch.tensor([t]))[0, 0].exp()
    expected = [hand.generate(xt, (j, 0), t, model.nets["logits"]) for j in range(V + 1)]
    # position 0's marginal: the second factor is position 1's, the same for every j.
    scale = sum(expected)
    # float32 tables (as every channel's): agreement to float32 rounding
    assert log_p.tolist() == pytest.approx([e / scale for e in expected], abs=1e-6)
    assert float(log_p[0]) > 0 and float(log_p[2]) > 0  # x[t] = 1 may have been redrawn


def test_redraw_errors_and_options() -> None:
    with pytest.raises(dtg.DtgRangeError, match="redraw = 1.5 at level t = 1, position i = 0"):
        dtg.loads(MODEL.format(alpha="1 - t / T", redraw="1.5"))
    with pytest.raises(dtg.DtgRangeError, match="redraw = 1.3 at level t = 3, position i = 0"):
        dtg.loads(MODEL.format(alpha="1 - t / T", redraw="0.6 * t - 0.5"))
    continuous = MODEL.format(alpha="1 - t / T", redraw="0.1").replace(
        "objective masking", "objective masking(time = continuous)"
    )
    with pytest.raises(dtg.DtgObjectiveError, match="redraws tokens uniformly"):
        dtg.loads(continuous)
    shuffle = MODEL.format(alpha="1 - t / T", redraw="0.1").replace("Mask(", "Shuffle(")
    with pytest.raises(dtg.DtgTypeError, match="Shuffle has no parameter 'redraw'"):
        dtg.loads(shuffle)


def test_zoom_draws_the_hybrid_step() -> None:
    from dtg.render.zoom import _step  # the zoomed-in view's transition table

    ir, hand = compiled("per_position").ir, Hand("per_position")
    for source in [(0, 2), (MASK, 1)]:
        table = _step(ir, 2, source)
        assert sum(table.values()) == pytest.approx(1.0)
        for target, prob in table.items():
            expected = math.prod(hand.step(source[i], target[i], 2, i) for i in range(L))
            assert prob == pytest.approx(expected, abs=1e-9)


EPSILON = MODEL.format(alpha="1 - t / T", redraw="0.2").replace(
    "objective masking", "objective masking(loss = epsilon_hybrid, hybrid_weight = 0.5)"
)


def test_flagged_marginal_draws_masks_and_redraws_at_their_rates() -> None:
    torch.manual_seed(0)
    model = dtg.loads(EPSILON).compile("cpu")
    n, t = 40_000, 2
    x0 = torch.zeros(n, L, dtype=torch.long)
    xt, masked, redrawn = model.destroy.marginal_with_flags(x0, torch.full((n,), t))
    a, c = 1 - t / T, 0.8**t
    assert bool((xt[masked] == MASK).all()) and bool((xt[~masked & ~redrawn] == 0).all())
    for share, p in ((masked.double().mean(), 1 - a), (redrawn.double().mean(), a * (1 - c))):
        assert abs(float(share) - p) < 4 * math.sqrt(p * (1 - p) / (n * L))


def test_epsilon_hybrid_loss_equals_the_hand_weighting() -> None:
    torch.manual_seed(0)
    model = dtg.loads(EPSILON).compile("cpu").double()
    x0 = torch.tensor([[0, 2], [1, 1], [2, 0]])
    xt = torch.tensor([[MASK, 2], [0, 1], [MASK, MASK]])
    masked = xt == MASK
    redrawn = torch.tensor([[False, False], [True, False], [False, False]])
    t = torch.tensor([1, 2, 3])
    got = model.objective.epsilon_hybrid_loss(x0, xt, masked, redrawn, t).detach()
    with torch.no_grad():
        logits = model.nets["logits"](xt, t.double() / T)
    for b in range(3):
        level = int(t[b])
        p, eps = level / T, 1 - 0.8**level  # mask probability 1 − a_t, redraw share 1 − c_t
        total = 0.0
        for i in range(L):
            ce = -torch.log_softmax(logits[b, i], -1)[x0[b, i]].item()
            if masked[b, i]:
                weight = 1 / p
            elif redrawn[b, i]:
                weight = 0.5 * (1 - eps)
            else:
                weight = 0.5 * eps
            total += weight * ce
        assert float(got[b]) == pytest.approx(total, rel=1e-5)


def test_epsilon_hybrid_needs_a_redraw() -> None:
    text = EPSILON.replace(", redraw = 0.2", "")
    with pytest.raises(dtg.DtgObjectiveError, match="it redraws none") as info:
        dtg.loads(text)
    line = text.splitlines()[info.value.span.line - 1]
    assert line[info.value.span.column - 1 :].startswith("loss = epsilon_hybrid")


@pytest.mark.parametrize("case", list(CASES))
def test_destruction_step_log_prob_matches_the_hand_kernel(case: str) -> None:
    model, hand = compiled(case), Hand(case)
    states = list(itertools.product(range(V + 1), repeat=L))
    for prev in [(0, 2), (MASK, 1), (1, 1)]:
        total = 0.0
        for nxt in states:
            got = model.destroy.log_prob(
                torch.tensor([nxt]), torch.tensor([prev]), torch.tensor([2])
            )
            expected = math.prod(hand.step(prev[i], nxt[i], 2, i) for i in range(L))
            assert float(got.exp()) == pytest.approx(expected, abs=1e-6)
            total += float(got.exp())
        assert total == pytest.approx(1.0, abs=1e-6)


def test_pyro_lowering_gives_a_finite_elbo() -> None:
    import pyro
    from pyro.infer import Trace_ELBO

    model = compiled("per_position")
    model_fn, guide_fn = model.pyro()
    pyro.set_rng_seed(0)
    loss = Trace_ELBO(max_plate_nesting=1).loss(model_fn, guide_fn, torch.tensor([[0, 1], [2, 2]]))
    assert math.isfinite(loss)

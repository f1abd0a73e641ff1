"""Per-position schedules (hyperschedules) of Mask: tables, exactness, equivalences, errors.

* hdlm's three families (``simple_annealing``, ``block_annealing``, ``hybrid_annealing``) against
  τ tables written out by hand from ServiceNow/hdlm's ``metaschedule.py`` for L = 4 (hdlm counts
  generation steps s = T − t; the rows below are already in dtg's destruction direction).
* Brute force on token(3)[3], T = 3: the discrete-time masking loss's expectation equals the
  exact negative ELBO enumerated with hand-written per-position kernels, for a block schedule and
  an irregular per-position one.
* The staircase equals ``MashLast`` (same causal net, same weights: same NELBO and the same
  samples from the same random stream) without calling ``MashLast``'s code; a keep written per
  position but equal at every position equals today's shared ``Mask``.
* Errors name the level and the position; a family whose T disagrees with the model's is located.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

import dtg
from dtg.channels import mask as mask_module

# hdlm tables for L = 4, rows t = 0..T of τ(t, i) in dtg's direction (t = T − s).
HAND_TABLES = {
    ("simple_annealing", "width = 1"): ["0000", "0001", "0011", "0111", "1111"],
    ("simple_annealing", "width = 2"): ["0000", "0001", "0012", "0122", "1222", "2222"],
    ("block_annealing", "size = 2, levels = 2"): ["0000", "0011", "0022", "1122", "2222"],
    ("block_annealing", "size = 2, levels = 3"): [
        "0000", "0011", "0022", "0033", "1133", "2233", "3333",
    ],
    ("hybrid_annealing", "size = 2, levels = 2"): [
        "0000", "0001", "0011", "0022", "0122", "1122", "2222",
    ],
    ("hybrid_annealing", "size = 2, levels = 3"): [
        "0000", "0001", "0012", "0022", "0033", "0133", "1233", "2233", "3333",
    ],
    ("hybrid_annealing", "size = 1, levels = 2"): [
        "0000", "0001", "0002", "0012", "0022", "0122", "0222", "1222", "2222",
    ],
}  # fmt: skip

FAMILY = """
model fam {{
  data x : token(3)[4] ~ categorical(probs = [0.5, 0.3, 0.2])
  steps T = {steps}
  schedule alpha(tau) = 1 - tau / {top}
  schedule tau(t, i) = {call}
  net logits : (token(3)[4], time) -> real[4, 3] = mlp(hidden = [8])
  destroy  x[t]   ~ Mask(x[t-1], keep = alpha(tau(t, i)) / alpha(tau(t-1, i)))
  generate x[T]   = masked
  generate x[t-1] ~ Guess(x[t], logits)
  objective masking
}}
"""


@pytest.mark.parametrize(("name", "options"), list(HAND_TABLES))
def test_families_match_hdlm_tables(name: str, options: str) -> None:
    rows = HAND_TABLES[(name, options)]
    expected = np.array([[int(c) for c in row] for row in rows], dtype=float)
    top = int(expected.max())
    text = FAMILY.format(steps=len(rows) - 1, top=top, call=f"{name}(t, i, {options})")
    ir = dtg.loads(text).irs[0]
    alpha = ir.marginals["alpha"]  # α(t, i) = 1 − τ(t, i) / τ_max
    assert alpha.shape == expected.shape
    np.testing.assert_allclose(top * (1 - alpha), expected, atol=1e-12)


def test_a_family_with_the_wrong_steps_is_located() -> None:
    text = FAMILY.format(steps=4, top=2, call="simple_annealing(t, i, width = 2)")
    with pytest.raises(dtg.DtgRangeError, match="has 5 levels, but steps T = 4") as info:
        dtg.loads(text)
    line = text.splitlines()[info.value.span.line - 1]
    assert line[info.value.span.column - 1 :].startswith("simple_annealing(")
    assert any("steps T = 5" in hint for hint in info.value.hints)


# ---------------------------------------------------------------- brute force, token(3)[3]
V, L, T = 3, 3, 3
MASK = V

TINY = """
model tiny {{
  data x : token(3)[3] ~ categorical(probs = [0.5, 0.3, 0.2])
  steps T = 3
  schedule a(t, i) = {alpha}
  net logits : (token(3)[3], time) -> real[3, 3] = mlp(hidden = [8])
  destroy  x[t]   ~ Mask(x[t-1], keep = a(t, i) / a(t-1, i))
  generate x[T]   = masked
  generate x[t-1] ~ Guess(x[t], logits)
  objective masking
}}
"""

# α(t, i) written in dtg and, independently, in Python.
SCHEDULES = {
    # blocks {0, 1} and {2}: position 2 is masked at t = 1, the first block over t = 2..3.
    "block": (
        "(1 - floor(i / 2)) * min(1, max(0, (3 - t) / 2)) + floor(i / 2) * max(0, 1 - t)",
        lambda t, i: (1 - i // 2) * min(1, max(0, (3 - t) / 2)) + (i // 2) * max(0, 1 - t),
    ),
    # irregular: each position has its own curve, all reaching 0 at t = T.
    "irregular": (
        "(1 - t / T) ^ (1 + i / 2) * (1 + 0.3 * sin(t + i)) / (1 + 0.3 * sin(i))",
        lambda t, i: (1 - t / T) ** (1 + i / 2) * (1 + 0.3 * math.sin(t + i)) / (1 + 0.3 * math.sin(i)),
    ),
}  # fmt: skip


def tiny(kind: str):
    torch.manual_seed(0)
    return dtg.loads(TINY.format(alpha=SCHEDULES[kind][0])).compile("cpu").double()


def hand_alpha(kind: str) -> list[list[float]]:
    alpha = SCHEDULES[kind][1]
    return [[alpha(t, i) for i in range(L)] for t in range(T + 1)]


def hand_mask_step(alpha, prev: tuple, nxt: tuple, t: int) -> float:
    """q(x[t] | x[t-1]): position i kept w.p. α(t, i)/α(t-1, i); a masked one stays masked."""
    p = 1.0
    for i, (a, b) in enumerate(zip(prev, nxt, strict=True)):
        if a == MASK:
            p *= 1.0 if b == MASK else 0.0
        else:
            keep = alpha[t][i] / alpha[t - 1][i]
            p *= keep if b == a else (1 - keep) if b == MASK else 0.0
    return p


def hand_subs_step(alpha, xt: tuple, prev: tuple, t: int, net) -> float:
    """p(x[t-1] | x[t]): carry unmasked; unmask position i w.p. its own r(t, i)."""
    with torch.no_grad():
        logits = net(torch.tensor([xt]), torch.tensor([t / T], dtype=torch.float64))[0]
    probs = torch.softmax(logits, -1).tolist()
    p = 1.0
    for i, (a, b) in enumerate(zip(xt, prev, strict=True)):
        if a != MASK:
            p *= 1.0 if b == a else 0.0
            continue
        rate = (alpha[t - 1][i] - alpha[t][i]) / (1 - alpha[t][i])
        p *= (1 - rate) if b == MASK else rate * probs[i][b]
    return p


def brute_force_nelbo(alpha, x0: tuple, net) -> float:
    """E_q[log q(x[1:T] | x[0]) − log p(x[0:T])] over every destruction trajectory."""
    states = list(itertools.product(range(V + 1), repeat=L))
    paths = [([x0], 1.0)]
    for t in range(1, T + 1):
        paths = [
            ([*chain, nxt], q * hand_mask_step(alpha, chain[-1], nxt, t))
            for chain, q in paths
            for nxt in states
            if hand_mask_step(alpha, chain[-1], nxt, t) > 0
        ]
    total = 0.0
    for chain, q in paths:
        assert chain[T] == (MASK,) * L
        steps = [hand_subs_step(alpha, chain[t], chain[t - 1], t, net) for t in range(1, T + 1)]
        total += q * (math.log(q) - math.log(math.prod(steps)))
    return total


def loss_expectation(model, alpha, x0: tuple) -> float:
    """E over levels (uniform) and per-position masks of the compiled single-level loss."""
    total = 0.0
    for t in range(1, T + 1):
        for hidden in itertools.product((False, True), repeat=L):
            xt = tuple(MASK if h else v for v, h in zip(x0, hidden, strict=True))
            prob = math.prod((1 - alpha[t][i]) if h else alpha[t][i] for i, h in enumerate(hidden))
            if prob == 0:
                continue
            term = model.objective.level_loss(
                torch.tensor([x0]), torch.tensor([xt]), torch.tensor([t])
            )
            total += prob * T * term.item()
    return total / T


@pytest.mark.parametrize("kind", list(SCHEDULES))
def test_per_position_loss_is_the_exact_nelbo(kind: str) -> None:
    model = tiny(kind)
    alpha = hand_alpha(kind)
    table = model.ir.marginals["alpha"]
    np.testing.assert_allclose(table, alpha, atol=1e-12)  # the checker's table, by hand
    for x0 in [(0, 1, 2), (2, 2, 0), (1, 0, 1)]:
        expected = brute_force_nelbo(alpha, x0, model.nets["logits"])
        assert loss_expectation(model, alpha, x0) == pytest.approx(expected, abs=1e-6)


def test_per_position_sampler_unmasks_with_each_positions_rate() -> None:
    """One generation step from all-masked x[T]: position i is unmasked w.p. r(T, i)."""
    model = tiny("irregular")
    alpha = hand_alpha("irregular")
    xt = torch.full((40_000, L), MASK)
    torch.manual_seed(0)
    prev = model.generate.sample(xt, torch.full((40_000,), T))
    share = (prev != MASK).double().mean(0)
    rates = [(alpha[T - 1][i] - alpha[T][i]) / (1 - alpha[T][i]) for i in range(L)]
    for i in range(L):
        se = math.sqrt(rates[i] * (1 - rates[i]) / 40_000)
        assert abs(float(share[i]) - rates[i]) < 4 * se + 1e-12


# ---------------------------------------------------------------- equivalences
AR = """
model ar {{
  data x : token(5)[6] ~ categorical(probs = [0.2, 0.2, 0.2, 0.2, 0.2])
  steps T = 6
  net logits : {net}
  {destroy}
  generate x[T]   = masked
  generate x[t-1] ~ Guess(x[t], logits)
  objective masking
}}
"""
CAUSAL = (
    "(token(5)[6]) -> real[6, 5] = transformer(width = 16, depth = 1, heads = 2, causal = true)"
)
TIMED = "(token(5)[6], time) -> real[6, 5] = mlp(hidden = [16])"
MASH_LAST = "destroy  x[t]   = MashLast(x[t-1])"
STAIRCASE = (
    "schedule alpha(tau) = 1 - tau\n"
    "  destroy  x[t]   ~ Mask(x[t-1], keep = alpha(simple_annealing(t, i, width = 1)) "
    "/ alpha(simple_annealing(t - 1, i, width = 1)))"
)


def _forbid_mash_last(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("MashLast's code ran for the hyperschedule")

    for cls in (mask_module.MashLast, mask_module.MashLastGuess):
        for name in ("sample", "log_prob", "log_probs", "marginal", "position", "sequence_nll"):
            if hasattr(cls, name):
                monkeypatch.setattr(cls, name, refuse)


@pytest.mark.parametrize("net", [CAUSAL, TIMED], ids=["causal_one_pass", "timed_per_level"])
def test_staircase_equals_mash_last(net: str, monkeypatch) -> None:
    reference = dtg.loads(AR.format(net=net, destroy=MASH_LAST)).compile("cpu")
    hyper = dtg.loads(AR.format(net=net, destroy=STAIRCASE)).compile("cpu")
    hyper.nets["logits"].load_state_dict(reference.nets["logits"].state_dict())
    assert isinstance(hyper.destroy, mask_module.Mask) and hyper.destroy.keep.dim() == 2
    assert hyper.generate.one_pass == (net == CAUSAL)
    x0 = torch.randint(0, 5, (16, 6), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = reference.nelbo(x0)
        torch.manual_seed(3)
        expected_samples = reference.sample(32)
        _forbid_mash_last(monkeypatch)
        got = hyper.nelbo(x0)
        torch.manual_seed(3)
        got_samples = hyper.sample(32)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    assert torch.equal(got_samples, expected_samples)


FLAT = """
model flat {{
  data x : token(4)[5] ~ categorical(probs = [0.4, 0.3, 0.2, 0.1])
  steps T = 5
  schedule alpha(t) = 1 - (t / T)^2
  schedule per(t, i) = 1 - (t / T)^2
  net logits : (token(4)[5], time) -> real[5, 4] = mlp(hidden = [16])
  destroy  x[t]   ~ Mask(x[t-1], keep = {keep})
  generate x[T]   = masked
  generate x[t-1] ~ Guess(x[t], logits)
  objective masking
}}
"""


def test_flat_per_position_keep_equals_the_shared_mask() -> None:
    shared = dtg.loads(FLAT.format(keep="alpha(t) / alpha(t-1)")).compile("cpu")
    flat = dtg.loads(FLAT.format(keep="per(t, i) / per(t-1, i)")).compile("cpu")
    flat.nets["logits"].load_state_dict(shared.nets["logits"].state_dict())
    assert shared.destroy.keep.dim() == 1 and flat.destroy.keep.shape == (6, 5)
    x0 = torch.randint(0, 4, (64, 5), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        results = []
        for model in (shared, flat):
            torch.manual_seed(5)
            nelbo, loss = model.nelbo(x0), model.loss(x0)
            torch.manual_seed(6)
            results.append((nelbo, loss, model.sample(16)))
    torch.testing.assert_close(results[1][0], results[0][0], atol=1e-5, rtol=0)
    torch.testing.assert_close(results[1][1], results[0][1], atol=1e-5, rtol=0)
    assert torch.equal(results[1][2], results[0][2])


# ---------------------------------------------------------------- errors
def _error(text: str, cls=dtg.DtgRangeError) -> Exception:
    with pytest.raises(cls) as info:
        dtg.loads(text)
    return info.value


def test_range_error_names_level_and_position() -> None:
    text = TINY.format(alpha="1 - t / T").replace(
        "keep = a(t, i) / a(t-1, i)", "keep = 1 - t * (i + 1) / 4"
    )
    error = _error(text)
    assert "keep = -0.5 at level t = 2, position i = 2" in str(error)
    line = text.splitlines()[error.span.line - 1]
    assert line[error.span.column - 1 :].startswith("1 - t * (i + 1) / 4")


def test_range_error_first_bad_entry() -> None:
    text = TINY.format(alpha="1 - t / T").replace(
        "keep = a(t, i) / a(t-1, i)", "keep = 1.5 - i / 4"
    )
    error = _error(text)
    assert "keep = 1.5 at level t = 1, position i = 0" in str(error)


def test_undefined_keep_where_position_is_intact_is_an_error() -> None:
    text = TINY.format(alpha="1 - t / T").replace(
        "keep = a(t, i) / a(t-1, i)", "keep = (t - 2) * (t + 2) / (t^2 - 4) * (1 - t / T) + 0 * i"
    )
    assert "level t = 2, position i = 0" in str(_error(text))


def test_zero_over_zero_is_accepted_where_absorbed() -> None:
    # the staircase written as a ratio of marginals is 0/0 after each position is absorbed.
    ir = dtg.loads(AR.format(net=TIMED, destroy=STAIRCASE)).irs[0]
    keep = ir.destroy.tables["keep"]
    assert np.isfinite(keep).all() and keep[6].tolist() == [0.0] * 6


def test_an_end_not_all_masked_names_the_position() -> None:
    text = TINY.format(alpha="1 - t / T").replace(
        "keep = a(t, i) / a(t-1, i)", "keep = 1 - min(1, max(0, 2 - i)) * t / T"
    )
    error = _error(text)
    assert "position i = 2" in str(error) and "unmasked at t = T" in str(error)


def test_position_outside_a_keep_is_unknown() -> None:
    text = TINY.format(alpha="1 - t / T").replace(
        "net logits : (token(3)[3], time) -> real[3, 3] = mlp(hidden = [8])",
        "net logits : (token(3)[3], time) -> real[3, 3] = mlp(hidden = [8])\n  schedule bad(t) = t + i",
    )
    error = _error(text, dtg.DtgNameError)
    assert "'i'" in str(error)


def test_continuous_time_needs_a_shared_keep() -> None:
    text = TINY.format(alpha="1 - t / T").replace(
        "objective masking", "objective masking(time = continuous)"
    )
    with pytest.raises(dtg.DtgObjectiveError, match="depends on the position i"):
        dtg.loads(text)


# ---------------------------------------------------------------- per-position Shuffle
SHUFFLE = """
model shuf {
  data x : token(3)[2] ~ categorical(probs = [0.5, 0.3, 0.2])
  steps T = 3
  schedule a(t, i) = (1 - t / 4) ^ (1 + i)
  net logits : (token(3)[2], time) -> real[2, 3] = mlp(hidden = [8])
  destroy  x[t]   ~ Shuffle(x[t-1], keep = a(t, i) / a(t-1, i))
  generate x[T]   ~ Categorical(logits = 0)
  generate x[t-1] ~ Guess(x[t], logits)
  objective masking
}
"""


def test_per_position_shuffle_loss_is_the_exact_nelbo() -> None:
    """D3PM's ELBO per (level, position) against enumeration with hand-written kernels."""
    vocab, length, steps = 3, 2, 3
    torch.manual_seed(0)
    model = dtg.loads(SHUFFLE).compile("cpu").double()
    net = model.nets["logits"]

    def alpha(t: int, i: int) -> float:
        return (1 - t / 4) ** (1 + i)

    def q_step(a: int, b: int, t: int, i: int) -> float:
        keep = alpha(t, i) / alpha(t - 1, i)
        return keep * (a == b) + (1 - keep) / vocab

    def q_marginal(x0: int, b: int, t: int, i: int) -> float:
        return alpha(t, i) * (x0 == b) + (1 - alpha(t, i)) / vocab

    def p_step(xt: tuple, prev: tuple, t: int) -> float:
        with torch.no_grad():
            logits = net(torch.tensor([xt]), torch.tensor([t / steps]).double())[0]
        probs = torch.softmax(logits, -1).tolist()
        p = 1.0
        for i in range(length):
            weights = [
                q_step(j, xt[i], t, i)
                * sum(q_marginal(x0, j, t - 1, i) * probs[i][x0] for x0 in range(vocab))
                for j in range(vocab)
            ]
            p *= weights[prev[i]] / sum(weights)
        return p

    states = list(itertools.product(range(vocab), repeat=length))
    for x0 in [(0, 2), (1, 1)]:
        paths = [([x0], 1.0)]
        for t in range(1, steps + 1):
            paths = [
                ([*c, n], q * math.prod(q_step(c[-1][i], n[i], t, i) for i in range(length)))
                for c, q in paths
                for n in states
            ]
        exact = sum(
            q
            * (
                math.log(q)
                - math.log(vocab**-length)
                - sum(math.log(p_step(c[t], c[t - 1], t)) for t in range(1, steps + 1))
            )
            for c, q in paths
        )
        expected_loss = 0.0
        for t in range(1, steps + 1):
            for xt in states:
                prob = math.prod(q_marginal(x0[i], xt[i], t, i) for i in range(length))
                term = model.objective.level_loss(
                    torch.tensor([x0]), torch.tensor([xt]), torch.tensor([t])
                )
                prior = float(model.objective.prior(torch.tensor([x0])))
                expected_loss += prob * (steps * term.item() + prior) / steps
        assert expected_loss == pytest.approx(exact, abs=1e-6)


def test_a_multi_dimensional_message_keeps_its_shape() -> None:
    text = (
        AR.format(net=TIMED, destroy=STAIRCASE)
        .replace("token(5)[6]", "token(5)[2, 3]")
        .replace("real[6, 5]", "real[2, 3, 5]")
        .replace(
            "/ alpha(simple_annealing(t - 1, i, width = 1)))",
            "/ alpha(simple_annealing(t - 1, i, width = 1)), redraw = 0.1 * i / 5)",
        )
    )
    model = dtg.loads(text).compile("cpu")
    assert model.ir.destroy.tables["keep"].shape == (7, 2, 3)
    assert model.ir.destroy.tables["redraw"].shape == (7, 2, 3)
    x0 = torch.randint(0, 5, (4, 2, 3))
    loss = model.loss(x0)
    loss.backward()
    assert torch.isfinite(loss)
    with torch.no_grad():
        assert model.sample(3).shape == (3, 2, 3)


@pytest.mark.parametrize(
    "keep", ["1 / (i - i)", "0 * i + 1 / (t - t)", "floor(i / 0)"], ids=["i", "t", "floor"]
)
def test_an_undefined_per_position_keep_is_located(keep: str) -> None:
    text = TINY.format(alpha="1 - t / T").replace("keep = a(t, i) / a(t-1, i)", f"keep = {keep}")
    error = _error(text)
    assert "level t = 1, position i = 0" in str(error)


def test_an_undefined_redraw_is_located() -> None:
    text = TINY.format(alpha="1 - t / T").replace(
        "keep = a(t, i) / a(t-1, i)", "keep = a(t, i) / a(t-1, i), redraw = 0 * i + 1 / (t - t)"
    )
    assert "redraw = nan at level t = 1, position i = 0" in str(_error(text))


def test_family_options_may_use_T_and_sizes_are_bounded() -> None:
    text = FAMILY.format(steps=4, top=4, call="block_annealing(t, i, size = 4, levels = T)")
    alpha = dtg.loads(text).irs[0].marginals["alpha"]
    np.testing.assert_allclose(alpha[:, 0], [1 - t / 4 for t in range(5)], atol=1e-12)
    text = FAMILY.format(steps=8, top=2, call="hybrid_annealing(t, i, size = 8, levels = 2)")
    assert "more than the 4 positions" in str(_error(text))
    text = FAMILY.format(steps=4, top=2, call="block_annealing(t, i, size = 4, levels = 0.5)")
    assert "positive whole number" in str(_error(text))


def test_the_position_outside_a_keep_gets_a_hint() -> None:
    text = TINY.format(alpha="1 - t / T").replace(
        "net logits : (token(3)[3], time) -> real[3, 3] = mlp(hidden = [8])",
        "net logits : (token(3)[3], time) -> real[3, 3] = mlp(hidden = [8])\n  schedule bad(t) = t + i",
    )
    error = _error(text, dtg.DtgNameError)
    assert any("exists only in the keep" in hint for hint in error.hints)

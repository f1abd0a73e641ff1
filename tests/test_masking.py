"""The masking objective against hand-written references.

* Mask (discrete time): the exact negative ELBO of a tiny model (token(3)[2], T = 4), computed by
  enumerating every destruction trajectory with hand-written kernels, equals the expectation of
  the compiled loss computed by exact enumeration over levels and masks.
* MashLast: the loss equals the next-token cross-entropy of the same net.
* Shuffle: the same exact comparison on the thesis's 3-state example.
* Continuous-time weights, option errors, and a short training run on digits.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch

import dtg

V, L, T = 3, 2, 4
MASK = V
ALPHA = [1 - (t / T) ** 2 for t in range(T + 1)]  # 1, 15/16, 3/4, 7/16, 0

TINY = """
model tiny {{
  data x : token(3)[2] ~ categorical(probs = [0.5, 0.3, 0.2])
  steps T = 4
  schedule alpha(t) = 1 - (t/T)^2
  net logits : (token(3)[2], time) -> real[2, 3] = mlp(hidden = [8])
  destroy  x[t]   ~ Mask(x[t-1], keep = alpha(t) / alpha(t-1))
  generate x[T]   = masked
  generate x[t-1] ~ Guess(x[t], logits)
  objective masking{options}
}}
"""


def tiny(options: str = "", device: torch.device | str = "cpu") -> dtg.backends.torch.CompiledModel:
    torch.manual_seed(0)
    return dtg.loads(TINY.format(options=options)).compile(device).double()


def net_device(net: torch.nn.Module) -> torch.device:
    return next(net.parameters()).device


def hand_mask_step(prev: tuple, nxt: tuple, t: int) -> float:
    keep = ALPHA[t] / ALPHA[t - 1]
    p = 1.0
    for a, b in zip(prev, nxt, strict=True):
        if a == MASK:
            p *= 1.0 if b == MASK else 0.0
        else:
            p *= keep if b == a else (1 - keep) if b == MASK else 0.0
    return p


def hand_subs_step(xt: tuple, prev: tuple, t: int, net) -> float:
    """p(x[t-1] | x[t]) written out: carry unmasked; unmask w.p. r_t to softmax(logits)."""
    rate = (ALPHA[t - 1] - ALPHA[t]) / (1 - ALPHA[t])
    with torch.no_grad():
        where = net_device(net)
        time = torch.tensor([t / T], dtype=torch.float64, device=where)
        logits = net(torch.tensor([xt], device=where), time)[0]
    probs = torch.softmax(logits, -1).tolist()
    p = 1.0
    for i, (a, b) in enumerate(zip(xt, prev, strict=True)):
        if a != MASK:
            p *= 1.0 if b == a else 0.0
        else:
            p *= (1 - rate) if b == MASK else rate * probs[i][b]
    return p


def brute_force_nelbo(x0: tuple, net) -> float:
    """E_q[log q(x[1:T] | x[0]) − log p(x[0:T])] over every destruction trajectory."""
    states = list(itertools.product(range(V + 1), repeat=L))
    paths = [([x0], 1.0)]  # trajectories with positive probability, extended level by level
    for t in range(1, T + 1):
        paths = [
            ([*chain, nxt], q * hand_mask_step(chain[-1], nxt, t))
            for chain, q in paths
            for nxt in states
            if hand_mask_step(chain[-1], nxt, t) > 0
        ]
    total = 0.0
    for chain, q in paths:
        assert chain[T] == (MASK,) * L  # alpha(T) = 0: p(x[T]) = 1
        p = math.prod(hand_subs_step(chain[t], chain[t - 1], t, net) for t in range(1, T + 1))
        total += q * (math.log(q) - math.log(p))
    return total


def exact_loss_expectation(model, x0: tuple) -> float:
    """E over levels (uniform) and masks of the compiled single-level loss, by enumeration."""
    objective, where = model.objective, model.device
    x0_tensor = torch.tensor([x0], device=where)
    total = 0.0
    for t in range(1, T + 1):
        for hidden in itertools.product((False, True), repeat=L):
            xt = tuple(MASK if h else v for v, h in zip(x0, hidden, strict=True))
            prob = math.prod((1 - ALPHA[t]) if h else ALPHA[t] for h in hidden)
            level = torch.tensor([t], device=where)
            term = objective.level_loss(x0_tensor, torch.tensor([xt], device=where), level)
            total += prob * (T * term.item() + float(objective.prior(x0_tensor)))
    return total / T


@pytest.mark.device
def test_mask_discrete_loss_is_the_exact_nelbo(device) -> None:
    model = tiny(device=device)
    net = model.nets["logits"]
    for x0 in [(0, 1), (2, 2), (1, 0)]:
        expected = brute_force_nelbo(x0, net)
        assert exact_loss_expectation(model, x0) == pytest.approx(expected, abs=1e-6)


@pytest.mark.device
def test_mask_sampled_loss_and_nelbo_are_unbiased(device) -> None:
    model = tiny("(sampling = uniform)", device)
    x0 = torch.tensor([[0, 1]], device=device).repeat(50_000, 1)
    expected = brute_force_nelbo((0, 1), model.nets["logits"])
    torch.manual_seed(1)
    # 0.05 is about 5 standard errors of the loss (one level per example) and 15 of the NELBO
    # (every level): a bound for any random stream, CUDA's too.
    with torch.no_grad():
        assert float(model.loss(x0)) == pytest.approx(expected, abs=0.05)
        assert float(model.nelbo(x0).mean()) == pytest.approx(expected, abs=0.05)


@pytest.mark.device
def test_nelbo_from_sampled_levels_is_unbiased(device) -> None:
    """``levels = K``: K distinct levels per example weighted T / K (``eval_levels``)."""
    model = tiny(device=device)
    x0 = torch.tensor([[2, 0]], device=device).repeat(60_000, 1)
    expected = brute_force_nelbo((2, 0), model.nets["logits"])
    torch.manual_seed(2)
    with torch.no_grad():
        for levels in (1, 3):
            draws = model.nelbo(x0, levels=levels)
            error = 4 * float(draws.std()) / math.sqrt(len(draws))
            assert float(draws.mean()) == pytest.approx(expected, abs=error), levels


@pytest.mark.device
def test_continuous_weights_follow_the_schedule_derivative(device) -> None:
    model = tiny("(time = continuous)", device)
    # alpha(t) = 1 - (t/T)^2: -alpha'(t) / (1 - alpha(t)) = (2t/T^2) / (t/T)^2 = 2/t.
    expected = [2.0 / t for t in range(1, T + 1)]
    assert model.objective.weights[1:].tolist() == pytest.approx(expected, rel=1e-6)
    discrete = tiny(device=device).objective.weights[1:].tolist()
    rates = [(ALPHA[t - 1] - ALPHA[t]) / (1 - ALPHA[t]) for t in range(1, T + 1)]
    assert discrete == pytest.approx(rates, rel=1e-6)


def test_continuous_time_needs_a_telescoping_keep() -> None:
    text = TINY.format(options="(time = continuous)").replace(
        "keep = alpha(t) / alpha(t-1)", "keep = (T - t) / (T - t + 1) / 2"
    )
    # Refused by the checker (so `dtg check` and `dtg train` agree), located at the option.
    with pytest.raises(dtg.DtgObjectiveError, match="g\\(t\\)/g\\(t-1\\)") as info:
        dtg.loads(text)
    assert text.splitlines()[info.value.span.line - 1][info.value.span.column - 1 :].startswith(
        "time = continuous"
    )


def test_continuous_time_on_mash_last_is_refused_by_check() -> None:
    text = MASH.replace("objective masking", "objective masking(time = continuous)")
    with pytest.raises(dtg.DtgObjectiveError, match="MDLM's weighting of Mask") as info:
        dtg.loads(text)
    assert (
        info.value.span is not None
        and info.value.span.line == text.count("\n", 0, text.index("time =")) + 1
    )


MASH = """
model ar {
  data x : token(5)[6] ~ categorical(probs = [0.2, 0.2, 0.2, 0.2, 0.2])
  steps T = 6
  net logits : (token(5)[6], time) -> real[6, 5] = mlp(hidden = [16])
  destroy  x[t]   = MashLast(x[t-1])
  generate x[T]   = masked
  generate x[t-1] ~ Guess(x[t], logits)
  objective masking
}
"""


def next_token_reference(net, x0: torch.Tensor, timed: bool) -> torch.Tensor:
    """Σ_i −log p(x0_i | x0_{<i}) written out: the net called once per position on the prefix
    with the rest masked (id 5), as generation sees it at level t = L − i: ``[B]``."""
    batch, length = x0.shape
    total = torch.zeros(batch, dtype=torch.float64, device=x0.device)
    for i in range(length):
        context = x0.clone()
        context[:, i:] = 5
        time = torch.full((batch,), float(length - i), device=x0.device) / length  # float32
        logits = net(context, time.double()) if timed else net(context)
        total += torch.nn.functional.cross_entropy(logits[:, i], x0[:, i], reduction="none")
    return total.detach()


@pytest.mark.device
def test_mash_last_loss_is_next_token_cross_entropy(device) -> None:
    torch.manual_seed(0)
    model = dtg.loads(MASH).compile(device).double()
    net = model.nets["logits"]
    x0 = torch.randint(5, (4, 6)).to(device)
    expected = next_token_reference(net, x0, timed=True)
    torch.testing.assert_close(model.nelbo(x0), expected, rtol=0, atol=1e-9)
    # One example repeated T times: antithetic levels cover each level once, so the
    # single-level loss is exactly the full cross-entropy.
    for row in range(4):
        loss = model.loss(x0[row : row + 1].repeat(6, 1)).detach()
        assert float(loss) == pytest.approx(float(expected[row]), abs=1e-9)


SHUFFLE3 = """
model shuffle3 {
  data x : token(3)[1] ~ categorical(probs = [0.6, 0.3, 0.1])
  steps T = 2
  net logits : (token(3)[1], time) -> real[1, 3] = mlp(hidden = [16])
  destroy  x[t]   ~ Shuffle(x[t-1], keep = 1/2)
  generate x[T]   ~ Categorical(logits = 0)
  generate x[t-1] ~ Guess(x[t], logits)
  objective masking
}
"""


@pytest.mark.device
def test_shuffle_loss_is_the_exact_nelbo(device) -> None:
    torch.manual_seed(0)
    model = dtg.loads(SHUFFLE3).compile(device).double()
    net, keep, alpha = model.nets["logits"], 0.5, [1.0, 0.5, 0.25]

    def q(b, a, k):  # uniform transition
        return k * (a == b) + (1 - k) / 3

    def p_step(prev, xt, t):  # D3PM x0-parameterisation, written out
        with torch.no_grad():
            logits = net(
                torch.tensor([[xt]], device=device), torch.tensor([t / 2.0], device=device)
            )
            probs = torch.softmax(logits[0, 0], -1)
        score = [
            q(xt, j, keep) * sum(q(j, x, alpha[t - 1]) * probs[x] for x in range(3))
            for j in range(3)
        ]
        return float(score[prev] / sum(score))

    for x0 in range(3):
        expected = 0.0
        for x1, x2 in itertools.product(range(3), repeat=2):
            qq = q(x1, x0, keep) * q(x2, x1, keep)
            pp = (1 / 3) * p_step(x1, x2, 2) * p_step(x0, x1, 1)
            expected += qq * (math.log(qq) - math.log(pp))
        got = 0.0
        for t in (1, 2):
            for xt in range(3):
                term = model.objective.level_loss(
                    torch.tensor([[x0]], device=device),
                    torch.tensor([[xt]], device=device),
                    torch.tensor([t], device=device),
                )
                got += q(xt, x0, alpha[t]) * float(term)
        got += float(model.objective.prior(torch.tensor([[x0]], device=device)))
        assert got == pytest.approx(expected, abs=1e-6)


def test_masking_rejects_continuous_time_for_shuffle() -> None:
    # The checker refuses it (dtg check and dtg train agree), not the compiler.
    with pytest.raises(dtg.DtgObjectiveError, match="continuous"):
        dtg.loads(SHUFFLE3.replace("objective masking", "objective masking(time = continuous)"))


def train_bits(
    text: str, steps: int, seed: int = 0, device: torch.device | str = "cpu"
) -> tuple[float, float]:
    torch.manual_seed(seed)
    model = dtg.loads(text).compile(device)
    data = model.dataset().to(device)
    batches = data.batches(64, torch.Generator().manual_seed(seed))
    optimizer = torch.optim.Adam(model.param_groups(1e-3))
    length = data.test.shape[1]
    before = float(model.nelbo(data.test).mean()) / (length * math.log(2))
    for _ in range(steps):
        loss = model.loss(next(batches))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = float(model.nelbo(data.test).mean()) / (length * math.log(2))
    return before, after


MDLM_SMALL = """
model mdlm_small {
  data x : token(17)[64] ~ digits()
  steps T = 16
  schedule alpha(t) = 1 - t/T
  net logits : (token(17)[64], time) -> real[64, 17] = transformer(width = 32, depth = 1, heads = 2)
  destroy  x[t]   ~ Mask(x[t-1], keep = alpha(t) / alpha(t-1))
  generate x[T]   = masked
  generate x[t-1] ~ Guess(x[t], logits)
  objective masking
}
"""


@pytest.mark.device
def test_training_mdlm_lowers_bits_per_token(one_thread, device) -> None:
    before, after = train_bits(MDLM_SMALL, steps=150, device=device)
    assert before > math.log2(17) - 0.3
    assert after < math.log2(17) - 1.0, (before, after)
    # samples are valid grey levels
    torch.manual_seed(0)
    model = dtg.loads(MDLM_SMALL).compile(device)
    samples = model.sample(4)
    assert samples.shape == (4, 64) and int(samples.min()) >= 0 and int(samples.max()) <= 16


CAUSAL = """
model ar_causal {
  data x : token(5)[6] ~ categorical(probs = [0.1, 0.2, 0.3, 0.2, 0.2])
  steps T = 6
  net logits : (token(5)[6]) -> real[6, 5] = transformer(width = 16, depth = 2, heads = 2, causal = true)
  destroy  x[t]   = MashLast(x[t-1])
  generate x[T]   = masked
  generate x[t-1] ~ Guess(x[t], logits)
  objective masking
}
"""


@pytest.mark.device
def test_causal_transformer_reads_only_earlier_positions(device) -> None:
    torch.manual_seed(0)
    model = dtg.loads(CAUSAL).compile(device).double()
    net = model.nets["logits"]
    x = torch.randint(5, (3, 6)).to(device)
    base = net(x)
    for i in range(6):  # change positions >= i: outputs at positions <= i must not move
        changed = x.clone()
        shift = 1 + torch.randint(4, changed[:, i:].shape).to(device)
        changed[:, i:] = (changed[:, i:] + shift) % 5
        out = net(changed)
        torch.testing.assert_close(out[:, : i + 1], base[:, : i + 1], rtol=0, atol=1e-12)
        if i < 5:  # and the next position does read position i
            assert not torch.allclose(out[:, i + 1], base[:, i + 1])


@pytest.mark.device
def test_causal_one_pass_equals_the_level_by_level_nelbo(device) -> None:
    """The one-call loss of a causal net equals Σ over levels of the per-level term, computed
    here level by level on x[t] (masked suffix) as the sampler sees it."""
    torch.manual_seed(1)
    model = dtg.loads(CAUSAL).compile(device).double()
    assert model.generate.one_pass
    net = model.nets["logits"]
    x0 = torch.randint(5, (7, 6)).to(device)
    expected = next_token_reference(net, x0, timed=False)
    torch.testing.assert_close(model.nelbo(x0), expected, rtol=0, atol=1e-9)
    assert float(model.loss(x0).detach()) == pytest.approx(float(expected.mean()), abs=1e-9)


def test_causal_net_with_time_keeps_the_level_by_level_loss() -> None:
    text = CAUSAL.replace("(token(5)[6]) -> real", "(token(5)[6], time) -> real")
    model = dtg.loads(text).compile("cpu")
    assert not model.generate.one_pass  # time differs per level, so one call cannot serve all


def test_causal_option_must_be_a_boolean() -> None:
    with pytest.raises(dtg.DtgError, match="causal"):
        dtg.loads(CAUSAL.replace("causal = true", "causal = 2")).compile("cpu")

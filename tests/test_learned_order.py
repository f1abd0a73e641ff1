"""Learned orders (``MashRandom(x[t-1], order = pick)``, ``Guess(…, order = reveal)``).

On token(2)[3], T = 3 (six orders), with the position distributions and SUBS steps written out
by hand from the nets' outputs:

* the trajectory estimate's mean equals the exact negative ELBO Σ_τ q(τ) f(τ), enumerated;
* the surrogate's gradient is unbiased: its mean over many trajectories equals the gradient of
  the enumerated NELBO, for the destruction's order net (score function) and the generation's;
* with both order nets at zero (uniform orders) the NELBO equals the uniform-order chain's.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch

import dtg

V, L, T = 2, 3, 3
MASK = V

TEXT = """
model lo {
  data x : token(2)[3] ~ categorical(probs = [0.6, 0.4])
  steps T = 3
  net logits : (token(2)[3], time) -> real[3, 2] = mlp(hidden = [8])
  net pick : (token(2)[3]) -> real[3] = mlp(hidden = [8]ZERO)
  net reveal : (token(2)[3], time) -> real[3] = mlp(hidden = [8]ZERO)
  destroy  x[t]   ~ MashRandom(x[t-1], order = pick)
  generate x[T]   = masked
  generate x[t-1] ~ Guess(x[t], logits, order = reveal)
  objective masking
}
"""


def compiled(zero: bool = False):
    torch.manual_seed(0)
    text = TEXT.replace("ZERO", ", zero_init = true" if zero else "")
    return dtg.loads(text).compile("cpu").double()


def exact_nelbo(model, x0: tuple) -> torch.Tensor:
    """Σ over the 3! orders of q(τ) (log q(τ) − log p(τ)), from the nets by hand (differentiable)."""
    pick, reveal, logits = (model.nets[n] for n in ("pick", "reveal", "logits"))
    total = torch.zeros((), dtype=torch.float64)
    for order in itertools.permutations(range(L)):
        x, log_q, log_p = list(x0), 0.0, 0.0
        for t, i in enumerate(order, start=1):
            before = torch.tensor([x])
            unmasked = [j for j in range(L) if x[j] != MASK]
            scores = pick(before)[0]
            log_q = log_q + scores[i] - torch.logsumexp(scores[unmasked], 0)
            x[i] = MASK
            after = torch.tensor([x])
            masked = [j for j in range(L) if x[j] == MASK]
            time = torch.tensor([t / T], dtype=torch.float64)
            position = reveal(after, time)[0]
            token = torch.log_softmax(logits(after, time)[0, i], -1)[x0[i]]
            log_p = log_p + position[i] - torch.logsumexp(position[masked], 0) + token
        total = total + log_q.exp() * (log_q - log_p)
    return total


def test_trajectory_estimate_is_unbiased() -> None:
    model = compiled()
    x0 = (0, 1, 1)
    n = 20_000
    torch.manual_seed(1)
    with torch.no_grad():
        estimates = model.nelbo(torch.tensor([x0]).repeat(n, 1))
        expected = float(exact_nelbo(model, x0))
    se = float(estimates.std()) / math.sqrt(n)
    assert abs(float(estimates.mean()) - expected) < 4 * se + 1e-9


def test_surrogate_gradient_is_unbiased() -> None:
    model = compiled()
    x0 = (1, 0, 1)
    exact_nelbo(model, x0).backward()
    expected = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    torch.manual_seed(2)
    rounds, n = 4, 20_000
    for _ in range(rounds):  # the mean gradient over 80,000 trajectories
        (model.loss(torch.tensor([x0]).repeat(n, 1)) / rounds).backward()
    for prefix in ("nets.pick.", "nets.reveal.", "nets.logits."):
        got = torch.cat(
            [p.grad.flatten() for k, p in model.named_parameters() if k.startswith(prefix)]
        )
        want = torch.cat(
            [expected[k].flatten() for k, _ in model.named_parameters() if k.startswith(prefix)]
        )
        cosine = float(got @ want / (got.norm() * want.norm()))
        assert cosine > 0.99, (prefix, cosine)
        assert float((got - want).norm() / want.norm()) < 0.1, prefix


def test_uniform_orders_reduce_to_the_uniform_chain() -> None:
    learned = compiled(zero=True)
    uniform = (
        dtg.loads(
            TEXT.replace(", order = pick", "").replace(", order = reveal", "").replace("ZERO", "")
        )
        .compile("cpu")
        .double()
    )
    uniform.nets["logits"].load_state_dict(learned.nets["logits"].state_dict())
    for x0 in [(0, 1, 1), (1, 1, 0)]:
        # the uniform chain's exact loss: E_t E_{|M| = t} T · (1/t) Σ_{i∈M} CE_i, enumerated
        total = 0.0
        for t in range(1, T + 1):
            subsets = list(itertools.combinations(range(L), t))
            for hidden in subsets:
                xt = tuple(MASK if i in hidden else v for i, v in enumerate(x0))
                term = uniform.objective.level_loss(
                    torch.tensor([x0]), torch.tensor([xt]), torch.tensor([t])
                )
                total += term.item() / len(subsets)
        with torch.no_grad():
            assert float(exact_nelbo(learned, x0)) == pytest.approx(total, abs=1e-6)
            # and the learned-order estimator itself (zero nets: uniform), by Monte Carlo
            torch.manual_seed(3)
            estimates = learned.nelbo(torch.tensor([x0]).repeat(20_000, 1))
        se = float(estimates.std()) / math.sqrt(len(estimates))
        assert abs(float(estimates.mean()) - total) < 4 * se + 1e-9


def test_order_option_errors() -> None:
    wrong = TEXT.replace("ZERO", "").replace(
        "net pick : (token(2)[3]) -> real[3]", "net pick : (token(2)[3]) -> real[2]"
    )
    with pytest.raises(dtg.DtgTypeError, match="must read token\\(2\\)\\[3\\]"):
        dtg.loads(wrong)
    mask = TEXT.replace("ZERO", "").replace(
        "destroy  x[t]   ~ MashRandom(x[t-1], order = pick)",
        "destroy  x[t]   ~ Mask(x[t-1], keep = (T - t) / (T - t + 1))",
    )
    with pytest.raises(dtg.DtgTypeError, match="order applies to MashRandom"):
        dtg.loads(mask)

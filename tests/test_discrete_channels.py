"""Discrete channels against brute-force transition matrices.

Per position, a Mask step is the (V+1)×(V+1) matrix keep·I + (1 − keep)·1e_MASKᵀ (MASK
absorbing) and a Shuffle step is keep·I + (1 − keep)/V·11ᵀ; marginals are products of these,
posteriors follow by Bayes' rule, and Guess kernels sum over x[0] by hand.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

import dtg
from dtg.channels.discrete import CategoricalKernel, CategoricalStart, MaskedStart
from dtg.channels.mask import MashLast, MashLastGuess, Mask, MaskGuess
from dtg.channels.shuffle import Shuffle, ShuffleGuess
from tests.conftest import EXAMPLES

V, L = 3, 2
KEEP = np.array([np.nan, 0.9, 0.6, 0.5, 0.0])  # T = 4, ends all-masked / uniform
T = len(KEEP) - 1


def mask_matrix(k: float) -> np.ndarray:
    q = k * np.eye(V + 1)
    q[:V, V] += 1 - k
    q[V, V] = 1.0
    return q


def shuffle_matrix(k: float) -> np.ndarray:
    return k * np.eye(V) + (1 - k) / V


def product(matrix, t: int) -> np.ndarray:
    out = np.eye(matrix(1.0).shape[0])
    for k in range(1, t + 1):
        out = out @ matrix(KEEP[k])
    return out


def pairs(states: int):
    grid = list(itertools.product(range(states), repeat=L))
    src = torch.tensor([a for a in grid for _ in grid])
    dst = torch.tensor([b for _ in grid for b in grid])
    return src, dst


def levels(n: int, t: int) -> torch.Tensor:
    return torch.full((n,), t, dtype=torch.long)


@pytest.mark.parametrize("t", [1, 2, 3, 4])
def test_mask_log_prob_and_marginal_match_matrices(t: int) -> None:
    channel = Mask(KEEP, V)
    src, dst = pairs(V + 1)
    step, bar = mask_matrix(KEEP[t]), product(mask_matrix, t)
    with np.errstate(divide="ignore"):
        expected = np.log(step[src[:, 0], dst[:, 0]] * step[src[:, 1], dst[:, 1]])
    got = channel.log_prob(dst, src, levels(len(src), t)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    x0 = torch.tensor([[0, 2], [1, 1]])
    marginal = channel.marginal_log_probs(x0, levels(2, t)).exp().numpy()
    np.testing.assert_allclose(marginal, bar[x0.numpy()], atol=1e-6)
    full = channel.log_probs(src, levels(len(src), t)).exp().numpy()
    np.testing.assert_allclose(full, step[src.numpy()], atol=1e-6)


def test_mask_samples_follow_the_kernel() -> None:
    channel = Mask(KEEP, V)
    gen = torch.Generator().manual_seed(0)
    x = torch.tensor([[0, V]]).repeat(20000, 1)
    y = channel.sample(x, levels(20000, 2), gen)
    assert (y[:, 1] == V).all()  # masked stays masked
    assert float((y[:, 0] == 0).float().mean()) == pytest.approx(KEEP[2], abs=0.02)
    assert set(y[:, 0].unique().tolist()) == {0, V}


@pytest.mark.parametrize("t", [1, 2, 3, 4])
def test_mask_posterior_and_subs_guess(t: int) -> None:
    channel = Mask(KEEP, V)
    bar_prev, bar = product(mask_matrix, t - 1), product(mask_matrix, t)
    step = mask_matrix(KEEP[t])
    for x0, xt in itertools.product(range(V), [0, 1, 2, V]):
        if bar[x0, xt] == 0:
            continue
        bayes = step[:, xt] * bar_prev[x0] / bar[x0, xt]  # q(x[t-1] | x[t], x[0]) by Bayes
        log_x0 = torch.log(torch.nn.functional.one_hot(torch.tensor([[x0]]), V).double())
        got = channel.posterior_log_probs(torch.tensor([[xt]]), log_x0, levels(1, t))
        np.testing.assert_allclose(got.exp()[0, 0].numpy(), bayes, atol=1e-6)
    torch.manual_seed(0)
    logits = torch.randn(5, L, V)
    guess = MaskGuess(channel, lambda x, level: logits)
    xt = torch.tensor([[0, V], [V, V], [2, 1], [V, 1], [1, V]])
    probs = guess.log_probs(xt, levels(5, t)).exp()
    rate = (np.prod(KEEP[1:t]) - np.prod(KEEP[1 : t + 1])) / (1 - np.prod(KEEP[1 : t + 1]))
    for b, i in itertools.product(range(5), range(L)):
        if xt[b, i] < V:  # carried over: one-hot on its value
            expected = torch.nn.functional.one_hot(xt[b, i], V + 1).float()
        else:  # SUBS: [MASK] logit -inf inside the softmax, unmask with rate r_t
            expected = torch.cat([rate * torch.softmax(logits[b, i], -1), torch.tensor([1 - rate])])
        torch.testing.assert_close(probs[b, i], expected.float(), atol=1e-6, rtol=0)


def test_subs_never_leaves_a_mask_at_the_end() -> None:
    channel = Mask(KEEP, V)
    guess = MaskGuess(channel, lambda x, level: torch.randn(x.shape[0], L, V))
    x = MaskedStart((L,), V).sample(None, levels(1000, T))
    for t in range(T, 0, -1):
        x = guess.sample(x, levels(1000, t))
    assert int(x.max()) < V and int(x.min()) >= 0
    assert (guess.log_probs(torch.full((3, L), V), levels(3, 1))[..., V] == -torch.inf).all()


@pytest.mark.parametrize("t", [1, 2, 3, 4])
def test_shuffle_matches_matrices(t: int) -> None:
    channel = Shuffle(KEEP, V)
    src, dst = pairs(V)
    step, bar, bar_prev = (
        shuffle_matrix(KEEP[t]),
        product(shuffle_matrix, t),
        product(shuffle_matrix, t - 1),
    )
    expected = np.log(step[src[:, 0], dst[:, 0]] * step[src[:, 1], dst[:, 1]])
    got = channel.log_prob(dst, src, levels(len(src), t)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    np.testing.assert_allclose(
        channel.log_probs(src, levels(len(src), t)).exp().numpy(), step[src.numpy()], atol=1e-6
    )
    x0 = torch.tensor([[0, 2], [1, 1]])
    marginal = channel.marginal_log_probs(x0, levels(2, t)).exp().numpy()
    np.testing.assert_allclose(marginal, bar[x0.numpy()], atol=1e-6)
    # D3PM guess: p(x[t-1] = j | x[t]) ∝ Q_t[j, x[t]] Σ_x0 Qbar_{t-1}[x0, j] p̂(x0)
    torch.manual_seed(t)
    logits = torch.randn(4, L, V, dtype=torch.float64)
    guess = ShuffleGuess(channel, lambda x, level: logits)
    xt = torch.tensor([[0, 1], [2, 2], [1, 0], [0, 0]])
    got = guess.log_probs(xt, levels(4, t)).exp().numpy()
    p0 = torch.softmax(logits, -1).numpy()
    for b, i in itertools.product(range(4), range(L)):
        score = step[:, xt[b, i]] * (p0[b, i] @ bar_prev)
        np.testing.assert_allclose(got[b, i], score / score.sum(), atol=1e-6)
    # the exact posterior q(x[t-1] | x[t], x[0]) is the guess at a one-hot x[0]
    for x0v, xtv in itertools.product(range(V), range(V)):
        bayes = step[:, xtv] * bar_prev[x0v] / bar[x0v, xtv]
        log_x0 = torch.log(torch.nn.functional.one_hot(torch.tensor([[x0v]]), V).double())
        post = channel.posterior_log_probs(torch.tensor([[xtv]]), log_x0, levels(1, t))
        np.testing.assert_allclose(post.exp()[0, 0].numpy(), bayes, atol=1e-6)


def test_shuffle_samples_follow_the_kernel() -> None:
    channel = Shuffle(KEEP, V)
    gen = torch.Generator().manual_seed(0)
    y = channel.sample(torch.zeros(30000, 1, dtype=torch.long), levels(30000, 2), gen)
    freq = torch.bincount(y[:, 0], minlength=V).float() / 30000
    np.testing.assert_allclose(freq.numpy(), shuffle_matrix(KEEP[2])[0], atol=0.015)
    z = channel.marginal(torch.zeros(30000, 1, dtype=torch.long), levels(30000, 3), gen)
    freq = torch.bincount(z[:, 0], minlength=V).float() / 30000
    np.testing.assert_allclose(freq.numpy(), product(shuffle_matrix, 3)[0], atol=0.015)


def test_mash_last_and_its_guess() -> None:
    channel = MashLast((4,), V)
    x = torch.tensor([[0, 1, 2, 0], [1, 2, V, V], [V, V, V, V]])
    y = channel.sample(x, levels(3, 1))
    assert y.tolist() == [[0, 1, 2, V], [1, V, V, V], [V, V, V, V]]
    assert channel.log_prob(y, x, levels(3, 1)).tolist() == [0.0, 0.0, 0.0]
    assert channel.log_prob(x, x, levels(3, 1))[0] == -torch.inf
    x0 = torch.tensor([[0, 1, 2, 0]])
    assert channel.marginal(x0, levels(1, 3)).tolist() == [[0, V, V, V]]
    logits = torch.randn(1, 4, V)
    guess = MashLastGuess(channel, lambda x, level: logits.expand(x.shape[0], -1, -1))
    xt = torch.tensor([[0, V, V, V]])
    probs = guess.log_probs(xt, levels(1, 3)).exp()[0]
    torch.testing.assert_close(probs[1, :V], torch.softmax(logits[0, 1], -1))
    assert probs[0, 0] == 1 and (probs[2:, V] == 1).all()
    filled = guess.sample(xt.repeat(100, 1), levels(100, 3))
    assert (filled[:, 0] == 0).all() and (filled[:, 1] < V).all() and (filled[:, 2:] == V).all()
    value = filled[:1]
    expected = torch.log_softmax(logits[0, 1], -1)[value[0, 1]]
    torch.testing.assert_close(guess.log_prob(value, xt, levels(1, 3))[0], expected)


def test_starts_and_categorical_kernel() -> None:
    start = MaskedStart((L,), V)
    x = start.sample(None, levels(2, T))
    assert (x == V).all() and start.log_prob(x, None, levels(2, T)).tolist() == [0.0, 0.0]
    uniform = CategoricalStart(lambda s, t: torch.tensor(0.0), (L,), V)
    y = uniform.sample(None, levels(5, T))
    assert int(y.max()) < V
    assert uniform.log_prob(y, None, levels(5, T)).tolist() == pytest.approx([-L * np.log(V)] * 5)
    logits = torch.randn(3, L, V)
    kernel = CategoricalKernel(lambda s, t: logits, (L,), V)
    value = torch.tensor([[0, 1], [2, 2], [1, 0]])
    expected = torch.log_softmax(logits, -1).gather(-1, value[..., None]).squeeze(-1).sum(1)
    torch.testing.assert_close(kernel.log_prob(value, value, levels(3, 2)), expected)


@pytest.mark.parametrize(
    "name", ["mdlm_digits", "autoregressive_digits", "uniform_digits", "shuffle3"]
)
def test_discrete_examples_compile_train_and_sample(name: str) -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny batches: one thread is faster and steadier
    try:
        check_example(name)
    finally:
        torch.set_num_threads(threads)


def check_example(name: str) -> None:
    torch.manual_seed(0)
    model = dtg.load(EXAMPLES / f"{name}.dtg").compile("cpu")
    data = model.dataset()
    batch = next(data.batches(4, torch.Generator().manual_seed(0)))
    loss = model.loss(batch)
    loss.backward()
    assert torch.isfinite(loss)
    samples = model.sample(2)
    vocab = model.ir.message.space.vocab
    assert samples.shape == (2, *model.ir.message.space.shape)
    assert samples.dtype == torch.long and int(samples.min()) >= 0 and int(samples.max()) < vocab
    assert torch.isfinite(model.nelbo(data.test[:2])).all()

"""Left-to-right generation with a key/value cache (dtg.nets.decode) against the full net.

The cache's logits at each position equal the full causal net's on the same prefix, and a
left-to-right model (MashLast, or the staircase hyperschedule) draws exactly the same samples
from the same random stream with and without the cache; where the cache cannot reproduce the
net (training mode: dropout; a timed net) generation goes level by level.
"""

from __future__ import annotations

import pytest
import torch

import dtg
from dtg.nets.decode import KVCache, can_decode

MODEL = """
model ar {{
  data x : token(5)[7] ~ categorical(probs = [0.2, 0.2, 0.2, 0.2, 0.2])
  steps T = 7
  net logits : ({inputs}) -> real[7, 5] = transformer(
      width = 16, depth = 2, heads = 2, dropout = 0.1, causal = true)
  {destroy}
  generate x[T]   = masked
  generate x[t-1] ~ Guess(x[t], logits)
  objective masking
}}
"""
MASH_LAST = "destroy  x[t]   = MashLast(x[t-1])"
STAIRCASE = (
    "schedule alpha(tau) = 1 - tau\n"
    "  destroy  x[t]   ~ Mask(x[t-1], keep = alpha(simple_annealing(t, i, width = 1)) "
    "/ alpha(simple_annealing(t - 1, i, width = 1)))"
)


def compiled(destroy: str, inputs: str = "token(5)[7]"):
    torch.manual_seed(0)
    return dtg.loads(MODEL.format(inputs=inputs, destroy=destroy)).compile("cpu").double()


def test_cached_logits_equal_the_full_pass() -> None:
    net = compiled(MASH_LAST).nets["logits"].eval()
    x = torch.randint(0, 5, (4, 7), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        full = net(x)  # [4, 7, 5]: position p reads x[:, :p]
        cache = KVCache(net, 4)
        steps = [cache.next_logits(None if p == 0 else x[:, p - 1]) for p in range(7)]
    torch.testing.assert_close(torch.stack(steps, 1), full, atol=1e-10, rtol=0)


@pytest.mark.parametrize("destroy", [MASH_LAST, STAIRCASE], ids=["mash_last", "staircase"])
def test_cached_generation_draws_the_same_samples(destroy: str) -> None:
    model = compiled(destroy).eval()
    calls = {"n": 0}
    net = model.nets["logits"]
    original = net.forward

    def counted(*args):
        calls["n"] += 1
        return original(*args)

    net.forward = counted
    with torch.no_grad():
        torch.manual_seed(4)
        cached = model.sample(50)
        assert calls["n"] == 0  # the cache ran the layers itself, never the full net
        model.generate.set_decoder(None)
        torch.manual_seed(4)
        by_level = model.sample(50)
    assert calls["n"] == 7  # level by level: one full pass per level
    assert torch.equal(cached, by_level)


def test_training_mode_and_timed_nets_go_level_by_level() -> None:
    model = compiled(MASH_LAST)
    assert model.training and not can_decode(model.nets["logits"])
    with torch.no_grad():
        assert model.generate.sample_sequence(3, torch.device("cpu")) is None
    timed = compiled(MASH_LAST, inputs="token(5)[7], time").eval()
    assert not timed.generate.one_pass
    with torch.no_grad():
        assert timed.generate.sample_sequence(3, torch.device("cpu")) is None

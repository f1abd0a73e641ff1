"""Tests for dtg.nets.pis: the PIS architecture against a forward pass written from its formula."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

import dtg
from dtg.ir.space import Space
from dtg.nets import NetConfigError, build_net, count_parameters

REAL3 = Space("real", (3,))
TIME = Space.time()


def _by_formula(net: torch.nn.Module, x: torch.Tensor | None, t: torch.Tensor) -> torch.Tensor:
    """h = MLP_t([sin(ωt + φ), cos(ωt + φ)]) + W_s x + b_s with ω = 0.1 … 100 evenly spaced;
    out = W_L gelu(… gelu(W_1 gelu(h) + b_1) …) + b_L, from the named parameters."""
    p = dict(net.named_parameters())
    omega = torch.linspace(0.1, 100.0, p["phase"].numel())
    features = []
    for b in range(t.shape[0]):  # one example at a time, as a hand-written loop
        angle = t[b] * omega + p["phase"]
        features.append(torch.cat([torch.sin(angle), torch.cos(angle)]))
    h = torch.stack(features) @ p["time.0.weight"].T + p["time.0.bias"]
    h = F.gelu(h) @ p["time.2.weight"].T + p["time.2.bias"]
    if x is not None:
        h = h + x @ p["state.weight"].T + p["state.bias"]
    linears = sorted({int(k.split(".")[1]) for k in p if k.startswith("joint.")})
    h = F.gelu(h)
    for i in linears[:-1]:
        h = F.gelu(h @ p[f"joint.{i}.weight"].T + p[f"joint.{i}.bias"])
    last = linears[-1]
    return h @ p[f"joint.{last}.weight"].T + p[f"joint.{last}.bias"]


@pytest.mark.parametrize("layers", [1, 2, 3])
def test_forward_matches_the_formula(layers: int) -> None:
    torch.manual_seed(0)
    net = build_net("pis", {"hidden": 16, "harmonics": 8, "layers": layers}, (REAL3, TIME), REAL3)
    x, t = torch.randn(5, 3), torch.rand(5)
    assert torch.allclose(net(x, t), _by_formula(net, x, t), atol=1e-5)
    assert sum(p.numel() for p in net.parameters()) == count_parameters(
        "pis", {"hidden": 16, "harmonics": 8, "layers": layers}, (REAL3, TIME), REAL3
    )


def test_a_time_only_net_reads_the_time_embedding_alone() -> None:
    torch.manual_seed(1)
    net = build_net("pis", {"hidden": 8}, (TIME,), Space.scalar())
    t = torch.rand(4)
    assert net(t).shape == (4,)
    assert torch.allclose(net(t), _by_formula(net, None, t)[:, 0], atol=1e-5)
    assert not torch.allclose(net(torch.zeros(2)), net(torch.full((2,), 0.5)))


def test_zero_init_and_out_bias_give_the_langevin_scale_start() -> None:
    net = build_net("pis", {"zero_init": True, "out_bias": 0.01}, (TIME,), Space.scalar())
    assert torch.equal(net(torch.rand(6)), torch.full((6,), 0.01))
    net = build_net("pis", {"zero_init": True}, (REAL3, TIME), REAL3)
    assert torch.equal(net(torch.randn(6, 3), torch.rand(6)), torch.zeros(6, 3))


@pytest.mark.parametrize(
    ("inputs", "said"),
    [
        ((REAL3,), "exactly one time"),
        ((REAL3, TIME, TIME), "exactly one time"),
        ((Space("token", (3,), vocab=4), TIME), "exactly one time"),
    ],
)
def test_inputs_it_cannot_read_are_refused(inputs: tuple, said: str) -> None:
    with pytest.raises(NetConfigError) as err:
        build_net("pis", {}, inputs, REAL3)
    assert said in err.value.message and "use mlp" in (err.value.hint or "")


def test_a_pis_drift_declared_in_dtg_checks_and_trains_a_step() -> None:
    text = """
model lp {
  space x : real[2]
  steps T = 4
  reward logr(x) = gmm25(x)
  schedule s(t) = (T - t) / (T - t + 1)
  net drift : (real[2], time) -> real[2] = pis(hidden = 16, zero_init = true)
  net scale : (time) -> real = pis(hidden = 16, zero_init = true, out_bias = 0.01)
  generate x[T]   = 0
  generate x[t-1] ~ Normal(x[t] + (drift(x[t], t) + scale(t) * grad(logr, x[t])) / T, sqrt(5 / T))
  destroy  x[t]   ~ Normal(s(t) * x[t-1], sqrt(5 / T * s(t)))
  objective trajectory_balance
}
"""
    program = dtg.loads(text)
    assert program.models[0].nets["drift"].arch == "pis"
    model = program.compile("cpu")
    loss = model.loss(8)
    loss.backward()
    assert torch.isfinite(loss)
    assert model.nets["drift"].state.weight.grad is not None

"""Tests for dtg.nets: shapes, time embedding, parameter counting, errors, training."""

from __future__ import annotations

import math
import subprocess
import sys
import time

import pytest
import torch
from conftest import ROOT, example_paths

import dtg
import dtg.nets
from dtg.ir.space import Space
from dtg.nets import (
    MAX_PARAMETERS,
    NetConfigError,
    build_net,
    count_parameters,
    sinusoidal_embedding,
)
from dtg.nets.spec import ACTIVATIONS

REAL2 = Space("real", (2,))
TIME = Space.time()
TOK = Space("token", (8,), vocab=5)
TOK_OUT = Space("real", (8, 5))
B = 3

CONFIGS = [
    ("mlp", {"hidden": [16, 16]}, (REAL2, TIME), REAL2),
    ("mlp", {"hidden": [8], "activation": "tanh", "time_dim": 7}, (REAL2, TIME), Space.scalar()),
    ("mlp", {"hidden": []}, (Space.scalar(),), Space("real", (2, 3))),
    ("mlp", {"hidden": [8, 4]}, (TOK, TIME), Space("real", (8, 5))),
    ("mlp", {"hidden": [8], "activation": "gelu"}, (Space("real", (2, 3)), TOK), REAL2),
    ("pis", {"hidden": 16, "harmonics": 8}, (REAL2, TIME), REAL2),
    ("pis", {"hidden": 8, "layers": 3}, (Space("real", (2, 3)), Space.scalar(), TIME), REAL2),
    ("pis", {"hidden": 8, "layers": 1}, (TIME,), Space.scalar()),
    ("transformer", {"width": 16, "depth": 2, "heads": 2}, (TOK, TIME), Space("real", (8, 5))),
    ("transformer", {"width": 8, "depth": 1, "heads": 1}, (TOK,), Space("real", (8,))),
    (
        "transformer",
        {"width": 8, "depth": 1, "heads": 2},
        (Space("real", (8,)), TIME),
        Space("real", (8,)),
    ),
    (
        "transformer",
        {"width": 8, "depth": 1, "heads": 2, "dropout": 0.1},
        (TOK, Space("real", (8, 3)), TIME),
        Space("real", (8, 4)),
    ),
    ("transformer", {"width": 8, "depth": 2, "heads": 2, "causal": True}, (TOK, TIME), TOK_OUT),
]


def _sample(sig: Space, batch: int = B) -> torch.Tensor:
    if sig.kind == "time":
        return torch.rand(batch)
    if sig.kind == "token":
        return torch.randint(0, sig.vocab + 1, (batch, *sig.shape))  # includes the mask id V
    return torch.randn(batch, *sig.shape)


@pytest.mark.parametrize(("arch", "options", "inputs", "output"), CONFIGS)
def test_output_shape_and_count(arch, options, inputs, output):
    torch.manual_seed(0)
    net = build_net(arch, options, inputs, output)
    y = net(*[_sample(s) for s in inputs])
    assert y.shape == (B, *output.shape)
    assert y.dtype == torch.float32
    assert torch.isfinite(y).all()
    assert count_parameters(arch, options, inputs, output) == sum(
        p.numel() for p in net.parameters()
    )


def test_sinusoidal_embedding_matches_reference():
    t = torch.tensor([0.0, 0.25, 1.0, 0.5])
    dim = 6
    got = sinusoidal_embedding(t, dim)
    for b, tb in enumerate(t.tolist()):
        for i in range(dim // 2):
            freq = 10000.0 ** (-i / (dim // 2))
            assert got[b, i].item() == pytest.approx(math.cos(1000.0 * tb * freq), abs=1e-4)
            assert got[b, dim // 2 + i].item() == pytest.approx(
                math.sin(1000.0 * tb * freq), abs=1e-4
            )
    odd = sinusoidal_embedding(t, 7)
    assert odd.shape == (4, 7)
    assert torch.equal(odd[:, :6], got)
    assert (odd[:, 6] == 0).all()
    assert sinusoidal_embedding(t.double(), 4).dtype == torch.float64


def test_time_changes_output():
    net = build_net("mlp", {"hidden": [16]}, (REAL2, TIME), REAL2)
    x = torch.randn(2, 2)
    assert not torch.allclose(net(x, torch.zeros(2)), net(x, torch.full((2,), 0.5)))


def test_zero_init_gives_zero_output():
    net = build_net("mlp", {"hidden": [16, 16], "zero_init": True}, (REAL2, TIME), REAL2)
    y = net(torch.randn(5, 2), torch.rand(5))
    assert torch.equal(y, torch.zeros(5, 2))


def test_transformer_handles_mask_ids():
    net = build_net(
        "transformer", {"width": 16, "depth": 1, "heads": 2}, (TOK, TIME), Space("real", (8, 5))
    )
    all_mask = torch.full((2, 8), 5)
    y = net(all_mask, torch.ones(2))
    assert y.shape == (2, 8, 5) and torch.isfinite(y).all()
    with pytest.raises(IndexError):
        net(torch.full((2, 8), 6), torch.ones(2))  # beyond the mask id


def test_gradients_flow_to_all_parameters():
    for arch, options, inputs, output in CONFIGS:
        net = build_net(arch, options, inputs, output)
        net(*[_sample(s) for s in inputs]).square().sum().backward()
        for name, p in net.named_parameters():
            assert p.grad is not None, (arch, name)
        real_in = _sample(REAL2).requires_grad_()
        if inputs[0] == REAL2:
            net(real_in, *[_sample(s) for s in inputs[1:]]).sum().backward()
            assert real_in.grad is not None and real_in.grad.abs().sum() > 0


def test_tiny_mlp_fits_regression():
    torch.manual_seed(0)
    net = build_net("mlp", {"hidden": [32, 32]}, (REAL2,), Space.scalar())
    x = torch.randn(256, 2)
    y = torch.sin(x[:, 0]) + 0.5 * x[:, 1]
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    first = None
    for _ in range(200):
        loss = (net(x) - y).square().mean()
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.1 * first


def test_wrong_arguments_are_reported():
    net = build_net("mlp", {"hidden": [4]}, (REAL2, TIME), REAL2)
    with pytest.raises(TypeError, match="expects 2 inputs"):
        net(torch.randn(3, 2))
    with pytest.raises(ValueError, match="input 1"):
        net(torch.randn(3, 3), torch.rand(3))


def test_unknown_arch_suggests():
    with pytest.raises(NetConfigError) as err:
        build_net("mlpp", {}, (REAL2,), REAL2)
    assert "mlpp" in err.value.message
    assert "did you mean 'mlp'" in err.value.hint
    assert "transformer" in err.value.hint


def test_unknown_option_suggests():
    with pytest.raises(NetConfigError) as err:
        build_net("mlp", {"hiden": [4]}, (REAL2,), REAL2)
    assert "hiden" in err.value.message and "did you mean 'hidden'" in err.value.hint
    with pytest.raises(NetConfigError) as err:
        build_net("mlp", {"activation": "sillu"}, (REAL2,), REAL2)
    assert "did you mean 'silu'" in err.value.hint


@pytest.mark.parametrize(
    ("arch", "options"),
    [
        ("mlp", {"hidden": 128}),
        ("mlp", {"hidden": [128, -1]}),
        ("mlp", {"hidden": [1.5]}),
        ("mlp", {"hidden": ["a"]}),
        ("mlp", {"hidden": [True]}),
        ("mlp", {"zero_init": 1}),
        ("mlp", {"time_dim": 0}),
        ("transformer", {"width": 10, "heads": 4}),
        ("transformer", {"depth": 0}),
        ("transformer", {"dropout": 1.0}),
        ("transformer", {"width": float("inf")}),
    ],
)
def test_bad_option_values(arch, options):
    out = Space("real", (8, 5)) if arch == "transformer" else REAL2
    with pytest.raises(NetConfigError) as err:
        build_net(arch, options, (TOK, TIME), out)
    assert err.value.message


@pytest.mark.parametrize(
    ("inputs", "output"),
    [
        ((TOK,), Space("real", (7, 5))),  # length mismatch
        ((TIME,), Space("real", (8,))),  # no sequence input
        ((Space("token", (2, 4), vocab=3),), Space("real", (2,))),  # 2-D tokens
        ((TOK,), Space("token", (8,), vocab=5)),  # non-real output
    ],
)
def test_bad_transformer_signatures(inputs, output):
    with pytest.raises(NetConfigError):
        build_net("transformer", {"width": 8, "depth": 1, "heads": 1}, inputs, output)


def test_huge_sizes_refused_without_allocating():
    start = time.perf_counter()
    with pytest.raises(NetConfigError) as err:
        build_net("mlp", {"hidden": [10**9]}, (REAL2, TIME), REAL2)
    assert time.perf_counter() - start < 1.0
    assert "parameters" in err.value.message and "," in err.value.message
    n = count_parameters(
        "transformer", {"width": 8192, "depth": 48, "heads": 8}, (TOK,), Space("real", (8, 5))
    )
    assert n > MAX_PARAMETERS
    with pytest.raises(NetConfigError, match="parameters"):
        build_net(
            "transformer",
            {"width": 8192, "depth": 48, "heads": 8},
            (TOK,),
            Space("real", (8, 5)),
        )


def test_module_moves_with_to():
    net = build_net(
        "transformer", {"width": 8, "depth": 1, "heads": 2}, (TOK, TIME), Space("real", (8,))
    ).to(torch.float64)
    y = net(_sample(TOK), torch.rand(B, dtype=torch.float32))
    assert y.dtype == torch.float64 and y.shape == (B, 8)


# ---------------------------------------------------------------- the torch-free half


def test_spec_imports_without_torch():
    """The checker's half of dtg.nets (and dtg.targets, dtg.plugins) leaves torch unloaded."""
    code = (
        "import sys; import dtg.nets, dtg.targets, dtg.plugins; "
        "from dtg.nets import count_parameters, NetConfigError, MAX_PARAMETERS; "
        "print(sorted(m for m in ('torch', 'pyro') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_lazy_names_and_unknown_attribute():
    assert dtg.nets.build_net is build_net and callable(dtg.nets.sinusoidal_embedding)
    assert dtg.nets.TIME_SCALE == 1000.0
    with pytest.raises(AttributeError, match="no attribute 'buid_net'"):
        _ = dtg.nets.buid_net


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_every_activation_the_spec_accepts_builds(activation):
    net = build_net("mlp", {"hidden": [4], "activation": activation}, (REAL2,), REAL2)
    assert net(torch.randn(B, 2)).shape == (B, 2)


def _example_nets() -> dict[tuple, int]:
    """Every distinct net of examples/, with the parameter count the checker recorded."""
    nets = {}
    for path in example_paths():
        for model in dtg.load(path).models:
            for spec in model.nets.values():
                key = (spec.arch, repr(spec.options), spec.inputs, spec.output)
                nets[key] = (spec.options, spec.parameters)
    return nets


def test_count_equals_numel_for_every_example_net():
    nets = _example_nets()
    assert {arch for arch, *_ in nets} == {"mlp", "pis", "transformer", "unet"}
    for (arch, _, inputs, output), (options, recorded) in nets.items():
        built = sum(p.numel() for p in build_net(arch, options, inputs, output).parameters())
        assert count_parameters(arch, options, inputs, output) == built, (arch, options)
        assert recorded == built, (arch, options)

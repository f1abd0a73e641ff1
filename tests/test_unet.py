"""The ``unet`` architecture (issue 24): shapes, parameter count, time conditioning, a one-batch
overfit, and located errors for shapes it cannot take."""

from __future__ import annotations

import pytest
import torch

import dtg
from dtg.ir.space import Space
from dtg.nets import NetConfigError, build_net, count_parameters

TIME = Space.time()
IMAGE = Space("real", (1, 8, 8))

CONFIGS = [
    ({"channels": 8, "mults": [1, 2], "groups": 4, "heads": 2}, (IMAGE, TIME), IMAGE),
    ({"channels": 8, "mults": [1], "groups": 2}, (IMAGE,), Space("real", (3, 8, 8))),
    (
        {"channels": 4, "mults": [1, 2, 2], "blocks": 2, "attention": [1], "groups": 2,
         "heads": 2, "dropout": 0.1},
        (TIME, Space("real", (3, 16, 12))), Space("real", (2, 16, 12)),
    ),
]  # fmt: skip


@pytest.mark.parametrize(("options", "inputs", "output"), CONFIGS)
def test_shapes_and_parameter_count(options, inputs, output) -> None:
    torch.manual_seed(0)
    net = build_net("unet", options, inputs, output)
    args = [torch.rand(3) if s.kind == "time" else torch.randn(3, *s.shape) for s in inputs]
    y = net(*args)
    assert y.shape == (3, *output.shape) and torch.isfinite(y).all()
    assert torch.equal(y, torch.zeros_like(y))  # the output convolution starts at zero
    assert count_parameters("unet", options, inputs, output) == sum(
        p.numel() for p in net.parameters()
    )


def _randomised(net: torch.nn.Module) -> torch.nn.Module:
    torch.manual_seed(1)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return net


def test_time_changes_the_output() -> None:
    options, inputs, output = CONFIGS[0]
    net = _randomised(build_net("unet", options, inputs, output)).eval()
    x = torch.randn(2, *IMAGE.shape)
    assert not torch.allclose(net(x, torch.zeros(2)), net(x, torch.full((2,), 0.7)), atol=1e-4)


def test_every_pixel_can_see_across_the_image() -> None:
    """Two levels and the middle attention: the output at one corner depends on the other."""
    options, inputs, output = CONFIGS[0]
    net = _randomised(build_net("unet", options, inputs, output)).eval()
    x = torch.randn(1, *IMAGE.shape, requires_grad=True)
    net(x, torch.full((1,), 0.3))[0, 0, 0, 0].backward()
    assert x.grad[0, 0, -1, -1].abs() > 0


def test_one_batch_overfits() -> None:
    torch.manual_seed(0)
    net = build_net("unet", {"channels": 8, "mults": [1, 2], "groups": 4}, (IMAGE, TIME), IMAGE)
    x, t = torch.randn(4, *IMAGE.shape), torch.rand(4)
    target = torch.randn(4, *IMAGE.shape)
    optimiser = torch.optim.Adam(net.parameters(), lr=3e-3)
    first = None
    for _ in range(300):
        loss = ((net(x, t) - target) ** 2).mean()
        first = float(loss.detach()) if first is None else first
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert float(loss) < 0.05 * first


@pytest.mark.parametrize(
    ("options", "inputs", "output", "message"),
    [
        ({"mults": [1, 2, 2, 2]}, (Space("real", (1, 12, 12)), TIME), Space("real", (1, 12, 12)),
         "divisible by 2^3 = 8; got 12 × 12"),
        ({}, (Space("real", (64,)), TIME), Space("real", (64,)), "one image real[C, H, W]"),
        ({}, (IMAGE, TIME), Space("real", (1, 4, 4)), "output must be real[C', 8, 8]"),
        ({"channels": 10}, (IMAGE,), IMAGE, "divisible by groups (8)"),
        ({"attention": [2]}, (IMAGE,), IMAGE, "names level 2"),
        ({"heads": 3}, (IMAGE,), IMAGE, "must divide the 128 channels of level 1"),
    ],
)  # fmt: skip
def test_shapes_it_cannot_take_are_refused(options, inputs, output, message) -> None:
    with pytest.raises(NetConfigError) as error:
        build_net("unet", options, inputs, output)
    assert message in str(error.value)


def test_the_checker_locates_an_indivisible_image() -> None:
    source = """model m {
  data x : real[1, 8, 8] ~ digits()
  steps T = 4
  schedule beta(t) = 0.1
  net eps : (real[1, 8, 8], time) -> real[1, 8, 8] = unet(channels = 8, mults = [1, 2, 2, 2, 2])
  destroy x[t] ~ Normal(sqrt(1 - beta(t)) * x[t-1], sqrt(beta(t)))
  generate x[T] ~ Normal(0, 1)
  generate x[t-1] ~ Guess(x[t], eps)
  objective denoising
}
"""
    with pytest.raises(dtg.DtgError) as error:
        dtg.loads(source, file="m.dtg")
    text = error.value.format()
    assert "m.dtg:5:" in text and "divisible by 2^4 = 16" in text and "^" in text

"""The user's own nets (issue 24): ``dtg.register_net`` and ``--plugin``, shape-checked at compile
time and reported at the ``net`` declaration."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

import dtg
from dtg.cli import main
from dtg.nets.registry import NetRegistryError, registered_nets, unregister_net

MODEL = """model m {{
  data x : real[2] ~ moons(n = 200)
  steps T = 4
  schedule beta(t) = 0.1
  net eps : (real[2], time) -> real[2] = {arch}
  destroy x[t] ~ Normal(sqrt(1 - beta(t)) * x[t-1], sqrt(beta(t)))
  generate x[T] ~ Normal(0, 1)
  generate x[t-1] ~ Guess(x[t], eps)
  objective denoising
  train {{ steps = 20, batch = 32, lr = 0.01 }}
}}
"""


class Tiny(nn.Module):
    def __init__(self, hidden: int, out: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(3, hidden), nn.SiLU(), nn.Linear(hidden, out))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.body(torch.cat([x, t[:, None]], dim=1))


@pytest.fixture(autouse=True)
def _forget_nets():
    yield
    for name in list(registered_nets()):
        unregister_net(name)


def load(tmp_path: Path, arch: str):
    path = tmp_path / "m.dtg"
    path.write_text(MODEL.format(arch=arch))
    return dtg.load(path)


def test_a_registered_net_is_built_with_the_declaration_and_trains(
    tmp_path: Path, one_thread: None
) -> None:
    seen = {}

    @dtg.register_net("tiny")
    def tiny(inputs, output, options):
        seen.update(inputs=inputs, output=output, options=options)
        return Tiny(options["hidden"], output.shape[0])

    model = load(tmp_path, "tiny(hidden = 16)").compile("cpu")
    assert isinstance(model.nets["eps"], Tiny)
    assert [s.kind for s in seen["inputs"]] == ["real", "time"]
    assert seen["output"].shape == (2,) and seen["options"] == {"hidden": 16}
    before = model.nets["eps"].body[0].weight.detach().clone()
    run = dtg.train(model, out=tmp_path / "run", progress=False)
    assert run.step == 20 and all(torch.isfinite(torch.tensor(run.losses)))
    assert not torch.equal(model.nets["eps"].body[0].weight, before)  # trained by dtg's loop


def test_a_wrong_shape_is_an_error_at_the_declaration(tmp_path: Path) -> None:
    dtg.register_net("wide", lambda inputs, output, options: Tiny(8, 3))
    program = load(tmp_path, "wide()")
    with pytest.raises(dtg.DtgTypeError) as error:
        program.compile("cpu")
    text = error.value.format()
    assert "m.dtg:5:" in text and "returns shape [2, 3] for a batch of 2" in text
    assert "-> real[2]" in text and "^" in text


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (lambda i, o, opts: 1 / 0, "failed to build: ZeroDivisionError"),
        (lambda i, o, opts: "not a module", "returned str, not a torch nn.Module"),
        (lambda i, o, opts: nn.Linear(5, 2), "failed on a batch of 2 zero inputs (real[2], time)"),
    ],
)
def test_a_failing_factory_or_module_is_named(tmp_path: Path, factory, message: str) -> None:
    dtg.register_net("broken", factory)
    with pytest.raises(dtg.DtgTypeError, match="net 'eps': the plug-in net 'broken'") as error:
        load(tmp_path, "broken()").compile("cpu")
    assert message in error.value.message


def test_an_unregistered_net_is_an_unknown_architecture(tmp_path: Path) -> None:
    with pytest.raises(dtg.DtgTypeError, match="unknown net architecture 'tiny'"):
        load(tmp_path, "tiny(hidden = 16)")


@pytest.mark.parametrize("name", ["mlp", "unet", "sqrt", "Mask", "not a name", "class"])
def test_built_in_or_bad_names_are_refused(name: str) -> None:
    with pytest.raises(NetRegistryError):
        dtg.register_net(name, lambda i, o, opts: Tiny(4, 2))


def test_a_plugin_file_registers_a_net_for_the_cli(tmp_path: Path, one_thread: None) -> None:
    plugin = tmp_path / "nets.py"
    plugin.write_text(
        "import dtg\nfrom torch import nn\n\n"
        "class Affine(nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n        self.lin = nn.Linear(2, 2)\n"
        "    def forward(self, x, t):\n        return self.lin(x) * (1 + t[:, None])\n\n"
        "dtg.register_net('affine', lambda inputs, output, options: Affine())\n"
    )
    path = tmp_path / "m.dtg"
    path.write_text(MODEL.format(arch="affine()"))
    out = tmp_path / "run"
    argv = ["train", str(path), "--plugin", str(plugin), "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    assert (out / "checkpoint.pt").is_file()


def test_the_dummy_batch_holds_the_mask_id_for_tokens(tmp_path: Path) -> None:
    seen = []

    class Embed(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(4, 3)  # tokens 0, 1, 2 and the mask id 3

        def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            seen.append(x.clone())
            return self.embed(x).sum(-1, keepdim=True).expand(*x.shape, 3)[..., :3]

    dtg.register_net("embed", lambda inputs, output, options: Embed())
    source = """model tokens {
  data x : token(3)[4] ~ categorical(probs = [0.2, 0.3, 0.5])
  steps T = 4
  schedule alpha(t) = 1 - t/T
  net logits : (token(3)[4], time) -> real[4, 3] = embed()
  destroy  x[t]   ~ Mask(x[t-1], keep = alpha(t) / alpha(t-1))
  generate x[T]   = masked
  generate x[t-1] ~ Guess(x[t], logits)
  objective masking
}
"""
    (tmp_path / "t.dtg").write_text(source)
    dtg.load(tmp_path / "t.dtg").compile("cpu")
    assert seen and int(seen[0].max()) == 3  # the mask id reached the module at compile time

"""``--sync-check`` (:mod:`dtg.sync_check`): the training step reads nothing back from the
device between sync points. On the CPU the reads are counted by patched tensor methods; each
test below makes a known read and checks that it is seen, named at its line, or let through."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import torch
from conftest import EXAMPLES, moons_model

import dtg
from dtg.sync_check import HostSyncCheck, count_host_syncs, expected_sync


def here() -> int:
    """The line number of the caller."""
    return inspect.currentframe().f_back.f_lineno


def test_every_kind_of_read_is_counted_at_its_line() -> None:
    before = dict(torch.Tensor.__dict__)
    x, mask = torch.arange(6.0), torch.tensor([True, False] * 3)
    found: list[str] = []
    with count_host_syncs(found):
        lines = []
        x.sum().item(), lines.append(here())
        float(x[0]), lines.append(here())
        bool(x[1] > 0), lines.append(here())
        x.tolist(), lines.append(here())
        x.cpu(), lines.append(here())
        x.nonzero(), lines.append(here())
        torch.nonzero(x), lines.append(here())
        x[mask], lines.append(here())
        [0, 1, 2][x[1].long()], lines.append(here())
        f"{x[2]:.1f}", lines.append(here())
        x[torch.tensor([0, 2])], x[1:3], x[0]  # integer indexing reads nothing
        torch.where(mask, x, 0.0).sum()  # nor device-side selection
    names = ["item", "__float__", "__bool__", "tolist", "cpu", "nonzero", "torch.nonzero",
             "boolean-mask indexing", "__index__", "__format__"]  # fmt: skip
    assert [f.split(" at ")[0] for f in found] == names
    assert all(f.endswith(f"test_sync_check.py:{n} in test_every_kind_of_read_is_counted_at_its_line")
               for f, n in zip(found, lines, strict=True))  # fmt: skip
    assert torch.Tensor.item is not None and float(x[2]) == 2.0  # the methods are back
    assert dict(torch.Tensor.__dict__) == before  # exactly: inherited ones inherited again


def moons(folder: Path, train: str = "log_every = 4"):
    path = folder / "m.dtg"
    path.write_text(moons_model(train=train))
    torch.manual_seed(0)
    return dtg.load(path).compile("cpu")


def test_a_read_inside_a_step_is_an_error_naming_it(tmp_path: Path, one_thread: None) -> None:
    model = moons(tmp_path)
    loss = model.loss

    def reading(data):
        value = loss(data)
        if value > 1e9:  # bool(tensor): waits for the device
            raise AssertionError
        return value

    model.loss = reading
    line = inspect.getsourcelines(reading)[1] + 2
    with pytest.raises(dtg.DtgRuntimeError, match=rf"step 2 .*__bool__ at .*:{line} in reading"):
        dtg.train(model, steps=4, out=tmp_path / "r", progress=False, sync_check=True)
    model.loss = loss
    dtg.train(model, steps=4, out=tmp_path / "r", progress=False, force=True)  # unchecked: fine


def test_the_first_step_and_expected_reads_pass(tmp_path: Path, one_thread: None) -> None:
    model = moons(tmp_path)
    loss, calls = model.loss, []

    def initialising(data):
        value = loss(data)
        if not calls:  # a one-time read on the first step (lazy initialisation)
            calls.append(float(value.detach()))
        with expected_sync():  # a read on purpose
            calls.append(value.detach().item())
        return value

    model.loss = initialising
    run = dtg.train(model, steps=5, out=tmp_path / "r", progress=False, sync_check=True)
    assert run.step == 5 and len(calls) == 6


@pytest.mark.parametrize(
    "example",
    ["ddpm_moons", "mdlm_digits", "gmm25_tb", "gmm25_lp",
     pytest.param("rtb_mdlm_even_digits", marks=pytest.mark.slow)],  # a minute: it builds a prior
)  # fmt: skip
def test_examples_train_without_syncs(example: str, tmp_path: Path, one_thread: None) -> None:
    """A denoising, a masking, a TB, an LP + local-search and an RTB example: steps 2–3 read
    nothing back (each objective family's own code)."""
    torch.manual_seed(0)
    model = dtg.load(EXAMPLES / f"{example}.dtg").compile("cpu")
    overrides = {"batch": 8}
    run = dtg.train(model, steps=3, out=tmp_path / "r", progress=False, overrides=overrides,
                    sync_check=True)  # fmt: skip
    assert run.step == 3


def test_precision_fp16_scaler_reads_are_allowed(
    tmp_path: Path, one_thread: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scaler's two reads per step run inside ``allowed()`` (on the CPU torch's own reads
    are not counted anyway; on CUDA the debug mode would stop them otherwise)."""
    allowed, calls = HostSyncCheck.allowed, []

    def counted(self):
        calls.append(self.enabled)
        return allowed(self)

    monkeypatch.setattr(HostSyncCheck, "allowed", counted)
    model = moons(tmp_path, "log_every = 4, precision = fp16")
    run = dtg.train(model, steps=4, out=tmp_path / "r", progress=False, sync_check=True)
    assert run.step == 4 and calls == [True] * 8  # unscale and step, each of 4 steps


@pytest.mark.parametrize(
    "example",
    ["ddpm_moons", "mdlm_digits", "autoregressive_digits", "gmm25_tb", "vae_digits",
     "learned_order_digits"],
)  # fmt: skip
def test_sampling_reads_nothing_back(example: str, one_thread: None) -> None:
    """Ancestral sampling of each family (Gaussian, masked, cached left-to-right, TB sampler,
    Pyro-lowered VAE, a learned order) reads no value back from the device."""
    torch.manual_seed(0)
    model = dtg.load(EXAMPLES / f"{example}.dtg").compile("cpu")
    model.eval()
    model.sample(2)  # lazy caches
    found: list[str] = []
    with count_host_syncs(found):
        samples = model.sample(4)
    assert found == [] and samples.shape[0] == 4

"""Mixed precision and compiled nets in training (train options ``precision`` and ``compile``;
:mod:`dtg.runtime.net_execution`).

References: the fp32 model itself, evaluated on the same batch with the same random draws, and
the fp32 run of the same length. bf16 keeps 8 mantissa bits (a relative rounding of 2⁻⁹ per
operation), so a loss through a two-layer MLP agrees with fp32 to about 1 %; the tolerances
below say so where they are used.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import assert_resume_is_exact, moons_model

import dtg
from dtg.runtime.checkpoint import load_checkpoint
from dtg.runtime.net_execution import TrainingNets


def moons(folder: Path, train: str = "log_every = 1000", name: str = "tiny"):
    path = folder / f"{name}.dtg"
    path.write_text(moons_model(name, train=f"lr = 0.01, {train}"))
    torch.manual_seed(0)
    return dtg.load(path).compile("cpu")


def test_nets_run_in_bf16_and_hand_back_float32(tmp_path: Path) -> None:
    model = moons(tmp_path)
    net = model.nets["eps"]
    seen: list[torch.dtype] = []
    linear = next(m for m in net.modules() if isinstance(m, torch.nn.Linear))
    linear.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    x, t = torch.randn(8, 2), torch.full((8,), 0.5)
    exact = net(x, t)
    with TrainingNets(model, "bf16", False, torch.device("cpu")):
        half = net(x, t)
    after = net(x, t)
    assert seen == [torch.float32, torch.bfloat16, torch.float32]  # inside only
    assert half.dtype == torch.float32  # cast back at the net's boundary
    assert torch.allclose(half, exact, rtol=0.05, atol=0.02) and not torch.equal(half, exact)
    assert torch.equal(after, exact) and "forward" not in net.__dict__  # restored
    assert "forward" not in str(list(model.state_dict()))


def test_bf16_loss_agrees_with_fp32_on_the_same_draws(tmp_path: Path) -> None:
    model = moons(tmp_path)
    batch = model.dataset(0).train[:256]
    torch.manual_seed(5)
    exact = float(model.loss(batch).detach())
    torch.manual_seed(5)
    with TrainingNets(model, "bf16", False, torch.device("cpu")):
        half = float(model.loss(batch).detach())
    assert half == pytest.approx(exact, rel=0.02)  # bf16 through the MLP: ~1 %


def trained(folder: Path, precision: str, steps: int) -> tuple[list[float], float, float]:
    """The loss lines, the held-out NELBO before and after ``steps`` steps (batch 128)."""
    model = moons(folder, f"precision = {precision}, log_every = 25", name=precision)
    test = model.dataset(0).test
    torch.manual_seed(9)
    before = float(model.nelbo(test).mean())
    dtg.train(model, steps=steps, batch=128, out=folder / precision, progress=False)
    torch.manual_seed(9)
    after = float(model.nelbo(test).mean())
    lines = (folder / precision / "metrics.jsonl").read_text().splitlines()
    return [json.loads(x)["loss"] for x in lines], before, after


def test_bf16_training_converges_like_fp32(tmp_path: Path, one_thread: None) -> None:
    full, start, end = trained(tmp_path, "fp32", 300)
    half, start_half, end_half = trained(tmp_path, "bf16", 300)
    assert start_half == start  # the same initial weights, scored in fp32
    assert end_half < start - 0.3 and end < start - 0.3  # both learn the moons
    assert end_half == pytest.approx(end, rel=0.01)  # and end where fp32 does
    # line by line the same draws give the same losses up to bf16's rounding in the nets
    assert half == pytest.approx(full, rel=0.01)


def test_fp16_scales_gradients_and_resumes_exactly(tmp_path: Path, one_thread: None) -> None:
    assert_resume_is_exact(lambda: moons(tmp_path, "precision = fp16, log_every = 1000"),
                           tmp_path, steps=6, first=3)  # fmt: skip
    saved = load_checkpoint(tmp_path / "straight" / "checkpoint.pt", torch.device("cpu"))
    assert saved["grad_scaler"]["scale"] > 0 and saved["train_options"]["precision"] == "fp16"


def test_an_unknown_precision_is_a_located_error(tmp_path: Path) -> None:
    path = tmp_path / "m.dtg"
    path.write_text(moons_model(train="precision = bf61"))
    with pytest.raises(dtg.DtgError) as info:
        dtg.load(path).compile("cpu")
    text = str(info.value)
    assert "bf61" in text and "bf16" in text and "m.dtg:" in text


def test_compiled_nets_give_the_eager_loss(tmp_path: Path, one_thread: None) -> None:
    model = moons(tmp_path)
    batch = model.dataset(0).train[:64]
    torch.manual_seed(1)
    eager = model.loss(batch)
    with TrainingNets(model, "fp32", True, torch.device("cpu")):
        torch.manual_seed(1)
        compiled = model.loss(batch)
        compiled.backward()  # gradients flow through the compiled graph
    assert float(compiled.detach()) == pytest.approx(float(eager.detach()), rel=1e-5)
    assert all(p.grad is not None for p in model.nets["eps"].parameters())


def test_a_forward_the_net_held_is_given_back(tmp_path: Path) -> None:
    model = moons(tmp_path)
    net = model.nets["eps"]
    own = net.forward  # a bound method held by the instance (as an OptimizedModule holds one)
    net.forward = own
    with TrainingNets(model, "bf16", False, torch.device("cpu")):
        assert net.forward is not own
    assert net.__dict__["forward"] is own


def test_gradients_non_finite_at_every_scale_stop_an_fp16_run(tmp_path: Path) -> None:
    model = moons(tmp_path, "precision = fp16, log_every = 50")
    loss = model.loss
    weight = next(model.parameters())

    def poisoned(data):  # a finite loss whose gradient is NaN (sqrt at 0), in float32 code
        return loss(data) + torch.sqrt(weight.sum() * 0)

    model.loss = poisoned
    with pytest.raises(dtg.DtgRuntimeError, match="overflowed at every scale"):
        dtg.train(model, steps=200, out=tmp_path / "r", progress=False)


def test_a_net_that_fails_to_compile_runs_eagerly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    def failing(forward, **options):
        def run(*args, **kwargs):
            raise torch._dynamo.exc.TorchDynamoException("no compiler here")

        return run

    monkeypatch.setattr(torch, "compile", failing)
    model = moons(tmp_path, "compile = true, log_every = 2")
    run = dtg.train(model, steps=2, out=tmp_path / "r", progress=False)
    assert run.step == 2 and "net 'eps' runs eagerly" in capsys.readouterr().err

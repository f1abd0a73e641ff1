"""The training runtime: the loop, metrics.jsonl, checkpoints, exact resume, NaN stops, the CLI.

Most tests use :class:`GaussModel`, a tiny stand-in with the compiled-model interface that fits a
diagonal Gaussian to data (its loss also draws from the global torch RNG, so resuming must
restore it). The end-to-end CLI tests compile ``examples/ddpm_moons.dtg``.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import pickle
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import EXAMPLES
from torch import nn

import dtg
import dtg.cli
import dtg.program
from dtg.cli.train import register
from dtg.data import Dataset
from dtg.errors import DtgRuntimeError
from dtg.ir.space import Space
from dtg.runtime import checkpoint as ck
from dtg.runtime import load_checkpoint, plot_samples, restore_model, save_checkpoint, train
from dtg.runtime.train import OptionError, Run, coerce_option, resolve_device

loop_module = importlib.import_module("dtg.runtime.loop")
DEFAULTS = {
    "steps": 40, "batch": 32, "lr": 0.05, "seed": 0, "grad_clip": 1.0,
    "checkpoint_every": 1000, "log_every": 10, "warmup": 0, "ema": 0.0,
}  # fmt: skip


class GaussModel(nn.Module):
    """Fits ``N(mu, diag(sigma²))`` to data: the compiled-model interface, in 30 lines."""

    def __init__(
        self,
        dims: int = 2,
        source: str = "model gauss {}",
        nan_at: int | None = None,
        device: torch.device | str = "cpu",
    ):
        super().__init__()
        self.mu = nn.Parameter(torch.zeros(dims))
        self.log_sigma = nn.Parameter(torch.zeros(dims))
        self.dims, self.nan_at, self.calls = dims, nan_at, 0
        space = SimpleNamespace(kind="real", shape=(dims,), vocab=None)
        self.ir = SimpleNamespace(
            name="gauss", train=dict(DEFAULTS), message=SimpleNamespace(space=space)
        )
        self.program = SimpleNamespace(source=source, file="gauss.dtg")
        self.device, self.needs_data = torch.device(device), True
        self.to(self.device)

    def dataset(self, seed: int = 0) -> Dataset:
        g = torch.Generator().manual_seed(1234 + seed)
        data = 2.0 + 0.5 * torch.randn(1200, self.dims, generator=g)
        return Dataset(data[:1000], data[1000:], Space("real", (self.dims,)))

    def loss(self, batch: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        noisy = batch + 0.01 * torch.randn_like(batch)  # the global RNG: resume must restore it
        nll = ((noisy - self.mu) ** 2 / (2 * (2 * self.log_sigma).exp()) + self.log_sigma).sum(-1)
        if self.nan_at is not None and self.calls >= self.nan_at:
            return nll.mean() * math.nan
        return nll.mean()

    def param_groups(self, lr: float) -> list[dict]:
        return [{"params": [self.mu], "lr": lr}, {"params": [self.log_sigma], "lr": lr / 2}]

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        return self.mu + self.log_sigma.exp() * torch.randn(n, self.dims, device=self.device)

    def nelbo(self, batch: torch.Tensor) -> torch.Tensor:
        sigma = self.log_sigma.exp()
        z = (batch - self.mu) / sigma
        return (0.5 * z**2 + self.log_sigma + 0.5 * math.log(2 * math.pi)).sum(-1).detach()

    def metrics(self, batch: torch.Tensor) -> dict[str, float]:
        return {"sigma": float(self.log_sigma.detach().exp().mean())}

    def diagnose_nan(self, batch: torch.Tensor) -> str:
        return "channel generate, level t = 37"


def fit(model: nn.Module, out: Path, **kwargs) -> Run:
    return train(model, out=out, progress=False, **kwargs)


def test_loss_decreases_and_fits(tmp_path: Path) -> None:
    model = GaussModel()
    run = fit(model, tmp_path, steps=150, overrides={"lr": 0.1})
    assert run.step == 150 and len(run.losses) == 150
    assert np.mean(run.losses[-10:]) < np.mean(run.losses[:10]) - 0.5
    assert torch.allclose(model.mu.detach(), torch.full((2,), 2.0), atol=0.4)


def test_metrics_jsonl_lines_parse(tmp_path: Path) -> None:
    fit(GaussModel(), tmp_path, steps=35, overrides={"warmup": 20, "log_every": 10})
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [10, 20, 30, 35]
    for line in lines:
        assert {"step", "loss", "lr", "time", "steps_per_s", "sigma"} <= set(line)
        assert math.isfinite(line["loss"]) and line["steps_per_s"] > 0
    assert lines[0]["lr"] == pytest.approx(0.05 * 10 / 20)  # linear warm-up
    assert lines[2]["lr"] == pytest.approx(0.05)


def test_progress_lines_when_not_a_tty(tmp_path: Path, capsys) -> None:
    train(GaussModel(), out=tmp_path, steps=20, progress=True)
    assert "step 10/20" in capsys.readouterr().err


def test_resume_continues_the_step_count(tmp_path: Path) -> None:
    fit(GaussModel(), tmp_path, steps=20)
    run = fit(GaussModel(), tmp_path, steps=30, resume=True)
    assert (run.start_step, run.step, len(run.losses)) == (20, 30, 10)
    assert load_checkpoint(tmp_path / "checkpoint.pt")["step"] == 30
    steps = [json.loads(x)["step"] for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert steps == [10, 20, 30]
    again = fit(GaussModel(), tmp_path, steps=30, resume=True)  # nothing left to do
    assert again.step == 30 and again.losses == []


@pytest.mark.device
@pytest.mark.parametrize("deferred", [False, True])
def test_resume_is_bitwise_exact(tmp_path: Path, monkeypatch, deferred: bool, device) -> None:
    """On ``device``: on CUDA the loss's noise comes from CUDA's generator, which the checkpoint
    must restore as well (bitwise: the same kernels on the same shapes sum in the same order)."""
    # deferred: the GPU's default, NaN checks wait for the log line; else a check every step
    monkeypatch.setattr(loop_module, "checks_every_step", lambda device: not deferred)
    options = {"ema": 0.9, "warmup": 5, "checkpoint_every": 7}
    straight = GaussModel(device=device)
    whole = fit(straight, tmp_path / "a", steps=40, overrides=options)
    fit(GaussModel(device=device), tmp_path / "b", steps=20, overrides=options)
    torch.manual_seed(999)  # disturb every global RNG: the checkpoint must restore them
    np.random.seed(999)
    resumed = GaussModel(device=device)
    with torch.no_grad():
        resumed.mu.fill_(5.0)
    second = fit(resumed, tmp_path / "b", steps=40, resume=True)
    assert whole.losses[20:] == second.losses
    for (name, a), b in zip(
        straight.state_dict().items(), resumed.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
    ema_a = load_checkpoint(tmp_path / "a" / "checkpoint.pt")["ema"]
    ema_b = load_checkpoint(tmp_path / "b" / "checkpoint.pt")["ema"]
    assert all(torch.equal(ema_a[k], ema_b[k]) for k in ema_a)


def test_resume_refuses_a_changed_program(tmp_path: Path) -> None:
    fit(GaussModel(), tmp_path, steps=10)
    with pytest.raises(DtgRuntimeError, match="gauss.dtg changed since checkpoint"):
        fit(GaussModel(source="model gauss { edited }"), tmp_path, steps=20, resume=True)
    run = fit(GaussModel(source="edited"), tmp_path, steps=20, resume=True, force=True)
    assert run.step == 20


def test_resume_without_a_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(DtgRuntimeError, match="no checkpoint at"):
        fit(GaussModel(), tmp_path, steps=10, resume=True)


def test_nan_loss_stops_naming_the_step(tmp_path: Path) -> None:
    model = GaussModel(nan_at=8)
    with pytest.raises(DtgRuntimeError) as caught:
        fit(model, tmp_path, steps=20, overrides={"checkpoint_every": 5})
    text = caught.value.format()
    assert "training stopped at step 8: the loss became nan" in text
    assert "channel generate, level t = 37" in text and "(step 5)" in text
    content = load_checkpoint(tmp_path / "checkpoint.pt")
    assert content["step"] == 5
    fresh = GaussModel()
    restore_model(fresh, content)
    assert all(torch.isfinite(p).all() for p in fresh.parameters())


def test_nan_found_late_on_the_deferred_path(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(loop_module, "checks_every_step", lambda device: False)
    with pytest.raises(DtgRuntimeError, match="step 13: the"):
        fit(GaussModel(nan_at=13), tmp_path, steps=30, overrides={"checkpoint_every": 10})
    assert load_checkpoint(tmp_path / "checkpoint.pt")["step"] == 10


class Payload:
    """A pickle that creates a file when unpickled (what a malicious checkpoint would do)."""

    def __init__(self, sentinel: Path) -> None:
        self.sentinel = sentinel

    def __reduce__(self):
        return (exec, (f"open({str(self.sentinel)!r}, 'w').close()",))


def test_bad_checkpoints_are_refused_without_running_code(tmp_path: Path) -> None:
    fit(GaussModel(), tmp_path, steps=5)
    good = (tmp_path / "checkpoint.pt").read_bytes()
    proof = tmp_path / "proof"
    pickle.loads(pickle.dumps(Payload(proof)))  # the payload really runs when unpickled
    assert proof.exists()
    sentinel = tmp_path / "sentinel"
    bad = {
        "truncated.pt": good[: len(good) // 2],
        "random.pt": np.random.default_rng(0).bytes(4096),
    }
    bad["pickle.pt"] = pickle.dumps(Payload(sentinel), protocol=2)
    for name, data in bad.items():
        (tmp_path / name).write_bytes(data)
    torch.save({"format": "dtg-checkpoint", "model": Payload(sentinel)}, tmp_path / "evil.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    for name in [*bad, "evil.pt"]:
        with pytest.raises(DtgRuntimeError, match="corrupted, truncated or not a dtg checkpoint"):
            load_checkpoint(tmp_path / name)
    with pytest.raises(DtgRuntimeError, match="not a dtg checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    with pytest.raises(DtgRuntimeError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "missing.pt")
    assert not sentinel.exists()


def test_wrong_model_lists_the_differences(tmp_path: Path) -> None:
    fit(GaussModel(dims=2), tmp_path, steps=5)
    with pytest.raises(DtgRuntimeError) as caught:
        restore_model(GaussModel(dims=3), load_checkpoint(tmp_path / "checkpoint.pt"))
    text = caught.value.format()
    assert (
        "does not fit model 'gauss'" in text and "shape of mu: checkpoint (2,), model (3,)" in text
    )


def test_atomic_writes_leave_no_temporary_files(tmp_path: Path) -> None:
    fit(GaussModel(), tmp_path, steps=12, overrides={"checkpoint_every": 3})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt", "metrics.jsonl"]
    before = (tmp_path / "checkpoint.pt").read_bytes()
    with pytest.raises(Exception):  # noqa: B017 - whatever pickling raises, nothing is left
        save_checkpoint(tmp_path / "checkpoint.pt", {"step": 1, "bad": lambda: 0})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt", "metrics.jsonl"]
    assert (tmp_path / "checkpoint.pt").read_bytes() == before


def test_ema_weights_are_saved_and_restored(tmp_path: Path) -> None:
    model = GaussModel()
    fit(model, tmp_path, steps=30, overrides={"ema": 0.8})
    content = load_checkpoint(tmp_path / "checkpoint.pt")
    assert not torch.equal(content["ema"]["mu"], model.mu.detach())
    fresh = GaussModel()
    restore_model(fresh, content, use_ema=True)
    assert torch.equal(fresh.mu.detach(), content["ema"]["mu"])


def test_options_are_checked() -> None:
    assert coerce_option("steps", "1e3") == 1000 and coerce_option("lr", "3e-4") == 3e-4
    for key, value, message in [
        ("lrr", 1, "did you mean 'lr'"),
        ("steps", "0", "must be ≥ 1"),
        ("steps", "2.5", "whole number"),
        ("lr", "fast", "finite number"),
        ("ema", 2, "≤ 1"),
    ]:
        with pytest.raises(OptionError) as caught:
            coerce_option(key, value)
        assert message in caught.value.message + str(caught.value.hint)
    with pytest.raises(DtgRuntimeError, match="unknown train option 'stpes'"):
        train(GaussModel(), overrides={"stpes": 3}, progress=False)


def test_sampler_models_get_the_batch_size(tmp_path: Path) -> None:
    class Sampler(GaussModel):
        needs_data = False

        def __init__(self) -> None:
            super().__init__()
            self.needs_data = False

        def dataset(self, seed: int = 0) -> None:
            return None

        def loss(self, batch: int) -> torch.Tensor:
            assert isinstance(batch, int) and batch == 16
            return ((self.mu - 3.0) ** 2).sum() + 0.0 * self.log_sigma.sum()

    run = fit(Sampler(), tmp_path, steps=60, batch=16, lr=0.1)
    assert run.losses[-1] < run.losses[0]


def test_devices() -> None:
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(DtgRuntimeError, match="unknown device"):
        resolve_device("tpu9")
    if not torch.cuda.is_available():
        with pytest.raises(DtgRuntimeError, match="CUDA is not available"):
            resolve_device("cuda")


def test_rng_states_round_trip() -> None:
    ck.seed_everything(3)
    state = ck.capture_rng()
    expected = (torch.rand(3), np.random.rand(3), __import__("random").random())
    ck.seed_everything(4)
    ck.restore_rng(state)
    got = (torch.rand(3), np.random.rand(3), __import__("random").random())
    assert torch.equal(expected[0], got[0]) and np.array_equal(expected[1], got[1])
    assert expected[2] == got[2]


def test_plots(tmp_path: Path) -> None:
    real2 = SimpleNamespace(kind="real", shape=(2,), vocab=None)
    image = SimpleNamespace(kind="real", shape=(64,), vocab=None)
    tokens = SimpleNamespace(kind="token", shape=(64,), vocab=17)
    tiny = SimpleNamespace(kind="token", shape=(1,), vocab=3)
    cases = [
        (real2, torch.randn(300, 2)),
        (image, torch.rand(70, 64) * 2 - 1),
        (tokens, torch.randint(0, 18, (64, 64))),
        (tiny, torch.randint(0, 3, (500, 1))),
    ]
    for i, (space, x) in enumerate(cases):
        path = plot_samples(x, space, tmp_path / f"p{i}.png", reference=x.flip(0), title="t")
        assert path.stat().st_size > 1000 and path.read_bytes()[:4] == b"\x89PNG"


# ---------------------------------------------------------------------------------- the CLI


_PROGRAMS: dict[str, dtg.Program] = {}


def _load_once(path) -> dtg.Program:
    """``dtg.load`` with a cache: checking a file takes a while, and parsing is tested elsewhere."""
    key = str(Path(path).resolve())
    if key not in _PROGRAMS:
        _PROGRAMS[key] = _real_load(path)
    return _PROGRAMS[key]


_real_load = dtg.program.load


@pytest.fixture
def cli(monkeypatch, tmp_path: Path):
    # train/sample/eval are registered in dtg.cli through dtg.cli.train/sample/eval.register.
    assert register is not None
    monkeypatch.setattr(dtg.program, "load", _load_once)
    monkeypatch.chdir(tmp_path)
    return lambda *args: dtg.cli.main([str(a) for a in args])


MOONS = EXAMPLES / "ddpm_moons.dtg"


def test_cli_usage_errors(cli, capsys, tmp_path: Path) -> None:
    cases = [
        (("train", MOONS, "--set", "lr"), "--set expects KEY=VALUE"),
        (("train", MOONS, "--set", "lrr=1"), "did you mean 'lr'"),
        (("train", MOONS, "--set", "steps=-3"), "must be ≥ 1"),
        (("train", MOONS, "--steps", "0"), "--steps"),
        (("train", "no/such.dtg"), "no such file"),
        (("train", MOONS, "--model", "nope"), "no model 'nope'"),
        (("train", MOONS, "--resume", "--out", tmp_path / "empty"), "nothing to resume"),
        (("sample", MOONS, "--checkpoint", "missing.pt"), "no such checkpoint"),
        (("eval", MOONS, "--checkpoint", "missing.pt", "--json"), "no such checkpoint"),
        (("sample", MOONS), "--checkpoint"),
    ]
    for args, message in cases:
        assert cli(*args) == 2, args
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, (args, err)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cli_cuda_unavailable(cli, capsys) -> None:
    assert cli("train", MOONS, "--device", "cuda", "--steps", "1") == 1
    assert "CUDA is not available" in capsys.readouterr().err


@pytest.mark.device
def test_cli_train_resume_sample_eval(cli, capsys, tmp_path: Path, device) -> None:
    _load_once(MOONS).compile(device=device)
    capsys.readouterr()
    common = ("--batch", 32, "--device", str(device), "--out", "run", "--no-progress")
    sets = ("--set", "checkpoint_every=2", "--set", "log_every=2")
    assert cli("train", MOONS, "--steps", 4, *sets, *common) == 0
    out = capsys.readouterr().out
    assert "checkpoint: run/checkpoint.pt" in out and "metrics:    run/metrics.jsonl" in out
    assert cli("train", MOONS, "--steps", 6, "--resume", *common) == 0
    assert load_checkpoint(tmp_path / "run" / "checkpoint.pt")["step"] == 6
    lines = Path("run/metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["step"] for x in lines] == [2, 4, 6]

    ckpt = "run/checkpoint.pt"
    assert (
        cli("sample", MOONS, "--checkpoint", ckpt, "-n", 64, "-o", "s.npy", "--plot", "s.png") == 0
    )
    assert np.load("s.npy").shape == (64, 2) and Path("s.png").stat().st_size > 1000
    capsys.readouterr()
    assert cli("eval", MOONS, "--checkpoint", ckpt, "-n", 64, "--max-examples", 64, "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["step"] == 6 and report["model"] == "ddpm_moons"
    assert {"nelbo_nats", "bits_per_dim", "mmd", "sliced_w"} <= set(report)
    assert report["bits_per_dim"] == pytest.approx(report["nelbo_nats"] / (2 * math.log(2)))
    assert report["test_examples"] == 64

    Path("bad.pt").write_bytes(os.urandom(100))
    assert cli("eval", MOONS, "--checkpoint", "bad.pt") == 1
    assert "corrupted" in capsys.readouterr().err

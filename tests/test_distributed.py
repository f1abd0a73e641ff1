"""Multi-process training with torchrun (gloo, loopback only) against single-process runs.

Every run names its device (``--device cpu``: gloo even on a machine with GPUs). The equality test
is a ``device`` test: with ``DTG_TEST_DEVICE=cuda`` it runs two ranks on two GPUs (nccl), and
says so by a skip naming the count where there are fewer than two (dtg runs rank k on ``cuda:k``
and uses nccl for CUDA, so one GPU cannot host both ranks).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import tolerance

MOONS = """
model m {
  data x : real[2] ~ moons(noise = 0.05)
  steps T = 20
  schedule beta(t) = 1e-3 + (0.2 - 1e-3) * (t - 1) / (T - 1)
  net eps : (real[2], time) -> real[2] = mlp(hidden = [32, 32])
  destroy  x[t]   ~ Normal(sqrt(1 - beta(t)) * x[t-1], sqrt(beta(t)))
  generate x[T]   ~ Normal(0, 1)
  generate x[t-1] ~ Guess(x[t], eps)
  objective denoising
  train { steps = 12, batch = 64, lr = 1e-3, checkpoint_every = 6, log_every = 3 }
}
"""

SAMPLER = """
model s {
  space x : real[2]
  steps T = 5
  reward logr(x) = gmm25(x)
  schedule k(t) = (T - t) / (T - t + 1)
  net drift : (real[2], time) -> real[2] = mlp(hidden = [16])
  generate x[T] = 0
  generate x[t-1] ~ Normal(x[t] + drift(x[t], t), sqrt(5 / T))
  destroy  x[t] ~ Normal(k(t) * x[t-1], sqrt(5 / T * k(t)))
  objective trajectory_balance(lr_logZ = 0.1)
  train { steps = 6, batch = 32, lr = 1e-3, checkpoint_every = 3, log_every = 3 }
}
"""


def dtg(
    *args: str, cwd: Path, env: dict | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dtg", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
    )


def weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["model"]


@pytest.mark.device
def test_two_processes_equal_one_process_and_resume_single(tmp_path: Path, device) -> None:
    """gloo on the CPU; nccl on two GPUs under ``DTG_TEST_DEVICE=cuda``."""
    if device.type == "cuda" and (found := torch.cuda.device_count()) < 2:
        pytest.skip(f"needs two CUDA devices for nccl, found {found}")
    on = ("--device", device.type, "--no-progress")  # rank k takes cuda:k under torchrun
    (tmp_path / "moons.dtg").write_text(MOONS)
    two = dtg("train", "moons.dtg", "--out", "two", "--nproc", "2", *on, cwd=tmp_path)
    assert two.returncode == 0, two.stderr
    one = dtg("train", "moons.dtg", "--out", "one", "--set", "shards=2", *on, cwd=tmp_path)
    assert one.returncode == 0, one.stderr
    a, b = weights(tmp_path / "two/checkpoint.pt"), weights(tmp_path / "one/checkpoint.pt")
    # CUDA: two GPUs' kernels and an nccl all-reduce against one GPU's accumulation, float32
    atol = tolerance(device, cpu=1e-6, cuda=1e-5)
    for key in a:
        if key.startswith("nets."):
            assert torch.allclose(a[key], b[key], atol=atol), key
    # One checkpoint and one metrics file, written by rank 0.
    assert len((tmp_path / "two/metrics.jsonl").read_text().splitlines()) == 4
    # The two-process checkpoint resumes in one process and continues the step count.
    resumed = dtg(
        "train",
        "moons.dtg",
        "--out",
        "two",
        "--resume",
        "--steps",
        "18",
        *on,
        cwd=tmp_path,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "trained steps 13-18" in resumed.stdout
    assert torch.load(tmp_path / "two/checkpoint.pt", weights_only=True)["step"] == 18


def test_sampler_trains_on_two_processes_with_a_shared_log_z(tmp_path: Path) -> None:
    (tmp_path / "s.dtg").write_text(SAMPLER)
    run = dtg(
        "train", "s.dtg", "--out", "run", "--nproc", "2", "--device", "cpu", "--no-progress",
        cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    state = weights(tmp_path / "run/checkpoint.pt")
    assert float(state["objective.log_z"]) != 0.0  # trained, and stored once


#: A plug-in that kills rank 1 outright after its step 8 (nothing runs on the way out), through
#: the public step-callback hook: every rank loads the plug-in, as torchrun re-runs the command.
DIE_AT_STEP_8 = """
import os

from dtg.runtime.train import add_step_callback


def die(event):
    if event.rank == 1 and event.step == 8:
        os._exit(17)


add_step_callback(die)
"""


def test_a_dying_rank_stops_the_job_without_a_partial_checkpoint(tmp_path: Path) -> None:
    (tmp_path / "moons.dtg").write_text(MOONS)
    (tmp_path / "die.py").write_text(DIE_AT_STEP_8)
    start = time.monotonic()
    run = dtg(
        "train",
        "moons.dtg",
        "--out",
        "dead",
        "--nproc",
        "2",
        "--device",
        "cpu",
        "--no-progress",
        "--plugin",
        "die.py",
        cwd=tmp_path,
        env={"DTG_DIST_TIMEOUT": "30"},
    )
    assert run.returncode != 0
    assert "dtg: rank 1 of the job failed (exit status 17)" in run.stderr, run.stderr[-2000:]
    assert "internal error" not in run.stderr and "Traceback" not in run.stderr, run.stderr
    assert time.monotonic() - start < 200
    checkpoint = tmp_path / "dead/checkpoint.pt"
    if checkpoint.exists():  # the step-6 checkpoint is complete and loads
        assert torch.load(checkpoint, weights_only=True)["step"] == 6
    assert not list((tmp_path / "dead").glob("*.tmp*"))


@pytest.mark.slow
def test_sigterm_under_nproc_saves_on_rank_0_and_exits_143(tmp_path: Path) -> None:
    """SIGTERM to ``dtg train --nproc 2`` (what SLURM sends): the launcher forwards it, the ranks
    agree on a step, rank 0 saves it, and the job exits 143 with one resume hint, within 10 s."""
    (tmp_path / "moons.dtg").write_text(MOONS.replace("steps = 12", "steps = 1000000"))
    process = subprocess.Popen(
        [sys.executable, "-m", "dtg", "train", "moons.dtg", "--out", "run", "--nproc", "2",
         "--device", "cpu", "--no-progress", "--set", "checkpoint_every=1000000", "--set", "log_every=1"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    metrics = tmp_path / "run" / "metrics.jsonl"
    deadline = time.monotonic() + 240
    while not (metrics.exists() and metrics.read_text().count("\n") >= 3):
        assert process.poll() is None, process.communicate()[1]
        assert time.monotonic() < deadline, "the ranks did not start training"
        time.sleep(0.1)
    process.terminate()
    sent = time.monotonic()
    _, stderr = process.communicate(timeout=60)
    assert time.monotonic() - sent < 10.0, stderr
    assert process.returncode == 143, stderr
    assert "Traceback" not in stderr, stderr
    assert stderr.count("checkpoint saved") == 1, stderr  # rank 0 reports, once
    step = int(stderr.split("stopped by SIGTERM after step ")[1].split(";")[0])
    assert torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["step"] == step > 0

"""Killed and interrupted training: what is on disk always loads, and training goes on.

The tests run ``python -m dtg train`` in a child process on a tiny model and stop it from
outside: SIGKILL at random moments (nothing can run on the way out, so only the atomic
checkpoint write protects the file), SIGINT (Ctrl-C) and SIGTERM (a checkpoint of the last whole
step, exit status 130 or 143), a second Ctrl-C, and signals during start-up.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from dtg.runtime.checkpoint import load_checkpoint

TINY = """model tiny {
  data x : real[2] ~ moons()
  steps T = 10
  schedule beta(t) = 0.1
  net eps : (real[2], time) -> real[2] = mlp(hidden = [16])
  destroy x[t] ~ Normal(sqrt(1 - beta(t)) * x[t-1], sqrt(beta(t)))
  generate x[T] ~ Normal(0, 1)
  generate x[t-1] ~ Guess(x[t], eps)
  objective denoising
  train { steps = 1000000, batch = 32, lr = 1e-3 }
}
"""

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX signals")


def start(folder: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dtg",
            "train",
            str(folder / "tiny.dtg"),
            "--out",
            str(folder / "run"),
            "--no-progress",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def resume_to(folder: Path, steps: int) -> subprocess.CompletedProcess:
    """``dtg train … --resume --steps STEPS`` to the end."""
    return subprocess.run(
        [sys.executable, "-m", "dtg", "train", str(folder / "tiny.dtg"), "--out",
         str(folder / "run"), "--no-progress", "--resume", "--steps", str(steps)],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=120,
    )  # fmt: skip


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            raise AssertionError(f"training ended early:\n{process.stderr.read()}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"no {path.name} after {timeout:g} s")
        time.sleep(0.02)


def test_sigkill_at_random_moments_never_leaves_a_bad_checkpoint(tmp_path: Path) -> None:
    (tmp_path / "tiny.dtg").write_text(TINY)
    checkpoint = tmp_path / "run" / "checkpoint.pt"
    rng = random.Random(0)
    steps = []
    for kill in range(10):
        extra = ["--set", "checkpoint_every=3", "--set", "log_every=5"]
        process = start(tmp_path, *extra, *(["--resume"] if kill else []))
        wait_for(checkpoint, process)
        before = checkpoint.stat().st_mtime_ns
        # Kill while it trains and rewrites the checkpoint every 3 steps (~100 a second).
        while checkpoint.stat().st_mtime_ns == before and process.poll() is None:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.4))
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        process.stdout.close()
        process.stderr.close()
        content = load_checkpoint(checkpoint, torch.device("cpu"))  # loads whole, every time
        steps.append(content["step"])
        assert content["step"] % 3 == 0
    # Every resume went on from the checkpoint before: the step count only grows.
    assert steps == sorted(steps) and steps[-1] > steps[0], steps
    leftovers = list((tmp_path / "run").glob(".checkpoint.pt.*"))
    assert len(leftovers) <= 1, leftovers  # at most the write the last kill cut short
    final = resume_to(tmp_path, steps[-1] + 4)
    assert final.returncode == 0, final.stderr
    assert load_checkpoint(checkpoint, torch.device("cpu"))["step"] == steps[-1] + 4
    assert not list((tmp_path / "run").glob(".checkpoint.pt.*"))  # stale writes cleaned up


@pytest.mark.parametrize(
    "signum, status, said",
    [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "stopped by SIGTERM")],
)
def test_ctrl_c_or_sigterm_saves_a_checkpoint_and_exits_128_plus_signal(
    tmp_path: Path, signum: int, status: int, said: str
) -> None:
    (tmp_path / "tiny.dtg").write_text(TINY)
    metrics = tmp_path / "run" / "metrics.jsonl"
    process = start(tmp_path, "--set", "checkpoint_every=100000", "--set", "log_every=1")
    wait_for(metrics, process)
    time.sleep(0.3)
    process.send_signal(signum)
    sent = time.monotonic()
    _, stderr = process.communicate(timeout=60)
    assert time.monotonic() - sent < 10.0  # SLURM's grace is 30 s; the save must fit well in it
    assert process.returncode == status, stderr
    assert "checkpoint saved" in stderr and "--resume" in stderr, stderr
    assert "Traceback" not in stderr, stderr
    step = int(stderr.split(f"{said} after step ")[1].split(";")[0])
    content = load_checkpoint(tmp_path / "run" / "checkpoint.pt", torch.device("cpu"))
    assert content["step"] == step > 0
    resumed = resume_to(tmp_path, step + 3)
    assert resumed.returncode == 0, resumed.stderr
    assert f"trained steps {step + 1}-{step + 3}" in resumed.stdout


def test_a_second_ctrl_c_quits_at_once_without_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "tiny.dtg").write_text(TINY)
    metrics = tmp_path / "run" / "metrics.jsonl"
    # A checkpoint every step: the second signal lands in the step or in the save.
    process = start(tmp_path, "--set", "checkpoint_every=1", "--set", "log_every=1")
    wait_for(metrics, process)
    # The first checkpoint is written after the first logged step: on a busy machine the two
    # signals could otherwise land before it, when there is nothing saved to check.
    wait_for(tmp_path / "run" / "checkpoint.pt", process)
    process.send_signal(signal.SIGINT)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr, stderr
    content = load_checkpoint(tmp_path / "run" / "checkpoint.pt", torch.device("cpu"))
    assert content["step"] >= 1  # whatever was saved is whole


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_during_start_up_exits_cleanly(tmp_path: Path, signum: int, status: int) -> None:
    (tmp_path / "tiny.dtg").write_text(TINY)
    process = start(tmp_path)
    time.sleep(1.0)  # past the interpreter's own start, inside dtg's imports or the compile
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == status, stderr
    assert "Traceback" not in stderr, stderr


def test_ctrl_c_while_the_cli_is_imported_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    from dtg import entry

    real_import = builtins.__import__

    def interrupted_import(name, globals=None, locals=None, fromlist=(), level=0):  # noqa: A002
        if name == "cli" and level == 1:
            raise KeyboardInterrupt
        return real_import(name, globals, locals, fromlist, level)

    monkeypatch.setattr(builtins, "__import__", interrupted_import)
    assert entry.main() == 130


def test_ctrl_c_while_loading_the_program_exits_130(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from dtg.cli import main, train

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(train, "load_program", interrupted)
    (tmp_path / "tiny.dtg").write_text(TINY)
    assert main(["train", str(tmp_path / "tiny.dtg"), "--out", str(tmp_path / "run")]) == 130
    assert capsys.readouterr().err.strip() == "dtg: interrupted"


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_start_up_signal_that_python_swallowed_still_stops_training(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """A signal landing in a ``__del__`` is only printed ("Exception ignored in …"); dtg
    remembers it, and training stops after its first step with a checkpoint."""
    from dtg.cli import main
    from dtg.interrupt import RECEIVED, stop_now

    class Finalised:
        def __del__(self) -> None:
            stop_now(signal.SIGTERM, None)  # as if SIGTERM arrived during this finaliser

    Finalised()  # the Stopped raised in __del__ is swallowed by Python
    assert RECEIVED == [signal.SIGTERM]
    (tmp_path / "tiny.dtg").write_text(TINY)
    argv = ["train", str(tmp_path / "tiny.dtg"), "--out", str(tmp_path / "run"), "--no-progress"]
    assert main(argv) == 143
    assert "stopped by SIGTERM after step 1; checkpoint saved" in capsys.readouterr().err
    assert load_checkpoint(tmp_path / "run" / "checkpoint.pt", torch.device("cpu"))["step"] == 1
    assert RECEIVED == []  # consumed: the next run starts afresh

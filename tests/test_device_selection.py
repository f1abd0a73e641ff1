"""The test device (``DTG_TEST_DEVICE``, tests/conftest.py): read once, refused loudly.

A CUDA device that is not there, or a name that is no device, stops a pytest run at start with
a usage error (exit status 4) that says what was asked and what is accepted: checked here on a
real run of one small test file, in a subprocess. A ``device`` mark without the fixture (or the
reverse) is refused at collection. The ``device`` fixture is the device the variable names.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ACCEPTED_DEVICES, DEVICE_VARIABLE, ROOT, test_device_name


def pytest_run(*args: str, device: str | None, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """``python -m pytest ARGS`` with ``DTG_TEST_DEVICE`` set to ``device`` (unset for None)."""
    env = {k: v for k, v in os.environ.items() if k != DEVICE_VARIABLE}
    env["OMP_NUM_THREADS"] = "1"
    if device is not None:
        env[DEVICE_VARIABLE] = device
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_variable_names_cpu_cuda_or_one_cuda_device() -> None:
    assert test_device_name({}) == "cpu"
    assert test_device_name({DEVICE_VARIABLE: ""}) == "cpu"
    for name in ("cpu", "cuda", "cuda:0", "cuda:3", " cuda "):
        assert test_device_name({DEVICE_VARIABLE: name}) == name.strip()
    for name in ("bogus", "gpu", "CUDA", "cuda:", "cuda:x", "cuda:-1", "cpu:0", "mps"):
        with pytest.raises(pytest.UsageError) as refused:
            test_device_name({DEVICE_VARIABLE: name})
        assert f"{DEVICE_VARIABLE}={name!r}" in str(refused.value)
        assert ACCEPTED_DEVICES in str(refused.value)


def test_a_missing_cuda_device_stops_the_run_at_start() -> None:
    """``cuda`` on a machine without CUDA (or ``cuda:N`` past the last GPU on one with CUDA):
    exit status 4 before anything is collected, never a run on the CPU instead."""
    import torch

    if torch.cuda.is_available():
        asked = f"cuda:{torch.cuda.device_count()}"
        said = f"has {torch.cuda.device_count()} CUDA device(s)"
    else:
        asked, said = "cuda", "CUDA is not available here"
    run = pytest_run("--collect-only", "-q", "tests/test_level_sum.py", device=asked)
    assert run.returncode == 4, (run.returncode, run.stdout, run.stderr)
    assert f"ERROR: {DEVICE_VARIABLE}={asked}, but" in run.stderr and said in run.stderr
    assert "test_every_level_is_the_exact_sum" not in run.stdout  # nothing was collected


def test_a_name_that_is_no_device_stops_the_run_at_start() -> None:
    run = pytest_run("--collect-only", "-q", "tests/test_level_sum.py", device="bogus")
    assert run.returncode == 4, (run.returncode, run.stdout, run.stderr)
    assert f"ERROR: {DEVICE_VARIABLE}='bogus' is not a test device" in run.stderr
    assert ACCEPTED_DEVICES in run.stderr


@pytest.mark.parametrize(
    ("test", "message"),
    [
        ("@pytest.mark.device\ndef test_x():\n    pass\n", "is marked device but does not take"),
        ("def test_x(device):\n    pass\n", "takes the device fixture but is not marked"),
    ],
)
def test_a_device_mark_needs_the_fixture_and_the_reverse(tmp_path: Path, test, message) -> None:
    (tmp_path / "test_one.py").write_text(f"import pytest\n\n\n{test}")
    env_path = os.pathsep.join([str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")])
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "conftest", "-q"],
        cwd=tmp_path,
        env={
            **{k: v for k, v in os.environ.items() if k != DEVICE_VARIABLE},
            "PYTHONPATH": env_path,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 4, (run.returncode, run.stdout, run.stderr)
    assert f"ERROR: test_one.py::test_x {message}" in run.stderr


@pytest.mark.device
def test_the_device_fixture_is_the_device_asked_for(device) -> None:
    """The CPU by default; under ``DTG_TEST_DEVICE=cuda`` a GPU, with TF32 off."""
    import torch

    asked = torch.device(test_device_name())
    assert device.type == asked.type and asked.index in (None, device.index)
    if not os.environ.get(DEVICE_VARIABLE, "").strip():
        assert device == torch.device("cpu")
    assert torch.zeros(1, device=device).device == device  # what the tests compare with
    if device.type == "cuda":
        assert not torch.backends.cuda.matmul.allow_tf32
        assert not torch.backends.cudnn.allow_tf32
        assert torch.cuda.current_device() == device.index

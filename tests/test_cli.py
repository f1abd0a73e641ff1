"""The command line through subprocess: exit codes 0 / 1 / 2 and no tracebacks."""

from __future__ import annotations

import subprocess
import sys

from conftest import BAD, ROOT, example_paths


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dtg", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_check_examples_ok() -> None:
    paths = [str(p.relative_to(ROOT)) for p in example_paths()]
    result = run("check", *paths)
    assert result.returncode == 0, result.stderr
    for path in paths:
        assert f"ok: {path} (1 model)" in result.stdout


def test_check_bad_files_one_located_error_each() -> None:
    paths = [str(p.relative_to(ROOT)) for p in sorted(BAD.glob("*.dtg"))]
    result = run("check", *paths)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    for path in paths:
        assert result.stderr.count(f"{path}:") >= 1, path
    headline_count = sum(1 for line in result.stderr.splitlines() if ": error: " in line)
    assert headline_count == len(paths)


def test_usage_errors_exit_2() -> None:
    for args in (("check",), ("check", "no/such/file.dtg"), ("--bogus",), ("frobnicate",), ()):
        result = run(*args)
        assert result.returncode == 2, args
        assert "Traceback" not in result.stderr
        assert "error" in result.stderr


def test_mixed_good_and_bad_exit_1() -> None:
    result = run("check", "examples/ddpm_moons.dtg", "tests/bad/empty.dtg")
    assert result.returncode == 1
    assert "ok: examples/ddpm_moons.dtg" in result.stdout
    assert "tests/bad/empty.dtg:1:1: error:" in result.stderr


def test_console_script_version() -> None:
    result = run("--version")
    assert result.returncode == 0 and result.stdout.startswith("dtg ")

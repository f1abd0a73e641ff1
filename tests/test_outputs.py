"""Outputs through the command line: links and special files are never replaced, and a file that
cannot be written is one line naming it (exit 1), with the old file intact.

Every command that writes — ``compile -o``, ``render -o``, ``fmt`` in place, ``new``, ``sample
-o``/``--plot``, and ``train`` (its checkpoint and ``metrics.jsonl``) — writes through
:mod:`dtg.atomic`; ``tests/test_atomic.py`` tests that module itself. The commands run in-process
through :func:`dtg.cli.main`. A full disk is simulated by making ``fsync`` (or ``write``) of the
one file under test fail with ``ENOSPC``, as the kernel does; read-only folders are tested only
where permission bits are enforced (not for root).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import EXAMPLES
from test_atomic import a_device, leftovers, permissions_enforced

from dtg.cli import main

pytestmark = pytest.mark.skipif(
    not os.path.isdir("/proc/self/fd"), reason="POSIX files; /proc names an open file"
)

MOONS = str(EXAMPLES / "ddpm_moons.dtg")
OLD = b"old contents\n" * 10
NO_SPACE = os.strerror(errno.ENOSPC)

TINY = """model tiny {
  data x : real[2] ~ moons()
  steps T = 4
  schedule beta(t) = 0.1
  net eps : (real[2], time) -> real[2] = mlp(hidden = [8])
  destroy x[t] ~ Normal(sqrt(1 - beta(t)) * x[t-1], sqrt(beta(t)))
  generate x[T] ~ Normal(0, 1)
  generate x[t-1] ~ Guess(x[t], eps)
  objective denoising
  train { steps = 2, batch = 8, lr = 1e-3, log_every = 1 }
}
"""


def dtg(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """Run ``dtg ARGV`` in-process: ``(exit status, standard error)``."""
    capsys.readouterr()
    status = main(list(argv))
    return status, capsys.readouterr().err


def full_disk(monkeypatch: pytest.MonkeyPatch, name: str, call: str = "fsync") -> None:
    """Make ``os.<call>`` (``fsync`` or ``write``) of a file whose name holds ``name`` fail with
    ENOSPC, as on a full disk; every other file is written as usual."""
    real: Callable[..., object] = getattr(os, call)

    def failing(descriptor: int, *rest: object) -> object:
        if name in os.readlink(f"/proc/self/fd/{descriptor}"):
            raise OSError(errno.ENOSPC, NO_SPACE)
        return real(descriptor, *rest)

    monkeypatch.setattr(os, call, failing)


def one_line(err: str, path: Path | str, reason: str) -> None:
    """Standard error is the one line ``error: cannot write PATH: REASON…`` (no traceback)."""
    assert err.startswith(f"error: cannot write {path}: {reason}"), err
    assert len(err.strip().splitlines()) == 1, err


# ------------------------------------------------------------------ links and special files


def test_compile_render_and_new_never_replace_a_link(tmp_path: Path, capsys) -> None:
    for name in ("real.txt", "real.dot", "real.dtg"):
        (tmp_path / name).write_bytes(OLD)
        (tmp_path / name.replace("real", "link")).symlink_to(name)
    link = tmp_path / "link.txt"
    status, err = dtg(capsys, "compile", MOONS, "--emit", "ast", "-o", str(link))
    assert status == 1
    one_line(err, link, "it is a symbolic link to real.txt; dtg replaces files atomically")
    assert dtg(capsys, "render", MOONS, "-o", str(tmp_path / "link.dot"))[0] == 1
    status, err = dtg(capsys, "new", "ddpm", str(tmp_path / "link.dtg"), "--force")
    assert status == 1 and "link.dtg: it is a symbolic link to real.dtg" in err
    for name in ("link.txt", "link.dot", "link.dtg"):
        assert os.readlink(tmp_path / name) == name.replace("link", "real")
        assert (tmp_path / name.replace("link", "real")).read_bytes() == OLD
    assert leftovers(tmp_path) == []


def test_fmt_refuses_a_linked_file_that_would_change(tmp_path: Path, capsys) -> None:
    messy = (EXAMPLES / "ddpm_moons.dtg").read_text().replace("\n", "\n\n", 3)
    (tmp_path / "real.dtg").write_text(messy)
    (tmp_path / "link.dtg").symlink_to("real.dtg")
    status, err = dtg(capsys, "fmt", str(tmp_path / "link.dtg"))
    assert status == 1
    one_line(err, tmp_path / "link.dtg", "it is a symbolic link to real.dtg")
    assert (tmp_path / "real.dtg").read_text() == messy
    assert dtg(capsys, "fmt", str(tmp_path / "real.dtg"))[0] == 0  # the target itself is fine
    assert (tmp_path / "real.dtg").read_text() != messy


def test_devices_and_pipes_are_refused_not_replaced(tmp_path: Path, capsys) -> None:
    os.mkfifo(tmp_path / "pipe.txt")  # opening it would wait for a reader: it must not be opened
    device = a_device(tmp_path)  # never the real /dev/null where a bug could replace it
    status, err = dtg(capsys, "compile", MOONS, "-o", str(device))
    assert status == 1
    one_line(err, device, "it is a character device, not a regular file")
    assert stat.S_ISCHR(os.stat(device).st_mode) and leftovers(device.parent) == []
    status, err = dtg(capsys, "compile", MOONS, "-o", str(tmp_path / "pipe.txt"))
    assert status == 1
    one_line(err, tmp_path / "pipe.txt", "it is a named pipe (FIFO), not a regular file")
    assert stat.S_ISFIFO(os.stat(tmp_path / "pipe.txt").st_mode)
    status, err = dtg(capsys, "compile", MOONS, "-o", "-")  # standard output is "-"
    assert status == 0 and capsys.readouterr().out == ""  # (read by dtg() already)


# ------------------------------------------------------------------ unwritable outputs


def test_a_folder_as_the_output_is_a_usage_error(tmp_path: Path, capsys) -> None:
    (tmp_path / "d.dot").mkdir()
    for argv in (["compile", MOONS, "-o"], ["render", MOONS, "-o"]):
        status, err = dtg(capsys, *argv, str(tmp_path / "d.dot"))
        assert status == 2 and err == f"dtg: error: {tmp_path / 'd.dot'} is a directory\n"


def test_an_output_under_a_file_names_the_file(tmp_path: Path, capsys) -> None:
    (tmp_path / "afile").write_bytes(OLD)
    for command in ("compile", "render"):
        out = tmp_path / "afile" / "out.dot"
        status, err = dtg(capsys, command, MOONS, "-o", str(out))
        assert status == 1
        one_line(err, out, f"{tmp_path / 'afile'} is a file, not a folder")
    assert (tmp_path / "afile").read_bytes() == OLD


def test_a_read_only_folder(tmp_path: Path, capsys) -> None:
    if not permissions_enforced(tmp_path):
        pytest.skip("permission bits are not enforced for this user (root)")
    folder = tmp_path / "ro"
    folder.mkdir()
    (folder / "old.dot").write_bytes(OLD)
    folder.chmod(0o555)
    try:
        for command, name in (("compile", "new.txt"), ("render", "old.dot")):
            status, err = dtg(capsys, command, MOONS, "-o", str(folder / name))
            assert status == 1
            one_line(err, folder / name, "Permission denied")
    finally:
        folder.chmod(0o755)
    assert sorted(os.listdir(folder)) == ["old.dot"] and (folder / "old.dot").read_bytes() == OLD


@pytest.mark.parametrize("command", ["compile", "render", "fmt"])
def test_a_full_disk_keeps_the_old_file(tmp_path: Path, capsys, monkeypatch, command) -> None:
    target = tmp_path / ("out.dtg" if command == "fmt" else "out.dot")
    old = (EXAMPLES / "ddpm_moons.dtg").read_text().replace("\n", "\n\n", 3).encode()
    target.write_bytes(old)
    full_disk(monkeypatch, "out.d")
    argv = [command, str(target)] if command == "fmt" else [command, MOONS, "-o", str(target)]
    status, err = dtg(capsys, *argv)
    monkeypatch.undo()
    assert status == 1
    one_line(err, target, NO_SPACE)
    assert target.read_bytes() == old and leftovers(tmp_path) == []


# ------------------------------------------------------------------ training and sampling


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with ``tiny.dtg`` and ``run/`` trained 2 steps (checkpoint and metrics)."""
    folder = tmp_path_factory.mktemp("outputs")
    (folder / "tiny.dtg").write_text(TINY)
    assert (
        main(["train", str(folder / "tiny.dtg"), "--out", str(folder / "run"), "--no-progress"])
        == 0
    )
    return folder


def resume(folder: Path, run: str = "run") -> list[str]:
    return ["train", str(folder / "tiny.dtg"), "--out", str(folder / run), "--no-progress",
            "--resume", "--steps", "4"]  # fmt: skip


def copy_run(trained: Path, tmp_path: Path) -> Path:
    """``tiny.dtg`` and a copy of the trained ``run/`` in ``tmp_path``."""
    (tmp_path / "run").mkdir()
    (tmp_path / "tiny.dtg").write_text(TINY)
    for name in ("checkpoint.pt", "metrics.jsonl"):
        (tmp_path / "run" / name).write_bytes((trained / "run" / name).read_bytes())
    return tmp_path


@pytest.mark.parametrize("file", ["checkpoint.pt", "metrics.jsonl"])
def test_a_full_disk_while_training_keeps_the_checkpoint(
    trained: Path, tmp_path: Path, capsys, monkeypatch, file: str
) -> None:
    folder = copy_run(trained, tmp_path)
    checkpoint = (folder / "run" / "checkpoint.pt").read_bytes()
    full_disk(monkeypatch, file)
    status, err = dtg(capsys, *resume(folder))
    monkeypatch.undo()
    assert status == 1, err
    one_line(err, folder / "run" / file, NO_SPACE)
    assert (folder / "run" / "checkpoint.pt").read_bytes() == checkpoint
    assert leftovers(folder / "run") == []


def test_a_full_disk_while_appending_metrics(trained: Path, tmp_path: Path, capsys, monkeypatch):
    folder = copy_run(trained, tmp_path)
    checkpoint = (folder / "run" / "checkpoint.pt").read_bytes()
    full_disk(monkeypatch, "metrics.jsonl", call="write")
    status, err = dtg(capsys, *resume(folder))
    monkeypatch.undo()
    assert status == 1, err
    one_line(err, folder / "run" / "metrics.jsonl", NO_SPACE)
    assert (folder / "run" / "checkpoint.pt").read_bytes() == checkpoint


def test_a_run_folder_under_a_file(trained: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "afile").write_bytes(OLD)
    status, err = dtg(capsys, "train", str(trained / "tiny.dtg"), "--out",
                      str(tmp_path / "afile" / "run"), "--no-progress")  # fmt: skip
    assert status == 1, err
    one_line(err, tmp_path / "afile" / "run", f"{tmp_path / 'afile'} is a file, not a folder")
    assert (tmp_path / "afile").read_bytes() == OLD


def test_a_read_only_run_folder(trained: Path, tmp_path: Path, capsys) -> None:
    if not permissions_enforced(tmp_path):
        pytest.skip("permission bits are not enforced for this user (root)")
    folder = copy_run(trained, tmp_path)
    checkpoint = (folder / "run" / "checkpoint.pt").read_bytes()
    (folder / "run").chmod(0o555)
    try:
        status, err = dtg(capsys, *resume(folder))
    finally:
        (folder / "run").chmod(0o755)
    assert status == 1, err
    assert err.startswith(f"error: cannot write {folder / 'run'}/") and "Permission denied" in err
    assert (folder / "run" / "checkpoint.pt").read_bytes() == checkpoint


def sample(trained: Path, *argv: str) -> list[str]:
    return ["sample", str(trained / "tiny.dtg"), "--checkpoint",
            str(trained / "run" / "checkpoint.pt"), "-n", "16", *argv]  # fmt: skip


def test_sample_outputs(trained: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    (tmp_path / "real.npy").write_bytes(OLD)
    (tmp_path / "link.npy").symlink_to("real.npy")
    (tmp_path / "d.npy").mkdir()
    status, err = dtg(capsys, *sample(trained, "-o", str(tmp_path / "link.npy")))
    assert status == 1
    one_line(err, tmp_path / "link.npy", "it is a symbolic link to real.npy")
    status, err = dtg(capsys, *sample(trained, "-o", str(tmp_path / "d.npy")))
    assert status == 1
    one_line(err, tmp_path / "d.npy", "it is a folder, not a file")
    for name, flag in (("real.npy", "-o"), ("old.png", "--plot")):
        (tmp_path / name).write_bytes(OLD)
        full_disk(monkeypatch, name.split(".")[0])
        status, err = dtg(capsys, *sample(trained, flag, str(tmp_path / name)))
        monkeypatch.undo()
        assert status == 1
        one_line(err, tmp_path / name, NO_SPACE)
        assert (tmp_path / name).read_bytes() == OLD
    assert leftovers(tmp_path) == []
    assert dtg(capsys, *sample(trained, "-o", str(tmp_path / "real.npy")))[0] == 0
    assert (tmp_path / "real.npy").read_bytes().startswith(b"\x93NUMPY")


def test_a_device_as_the_dtg_file_is_refused_not_read(capsys) -> None:
    status, err = dtg(capsys, "check", "/dev/zero")  # reading it would never end
    assert status == 2 and err == "dtg: error: /dev/zero is a character device, not a .dtg file\n"

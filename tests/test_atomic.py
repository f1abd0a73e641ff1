"""dtg.atomic: a rewritten file is the old one or the new one whole, never a torn mix.

The checks: what is written reads back; a writer that raises (or is interrupted) leaves the old
file byte for byte and no temporary file; a process killed in the middle of a write leaves the
old file and a temporary that :func:`remove_stale_temporaries` clears; permissions are kept or
follow the umask; a link, a folder, a device, a named pipe or a socket is never replaced; every
failure to write (a missing or read-only folder, a path under a file, a full disk) is one
:class:`~dtg.errors.DtgOutputError` naming the path and the OS reason, with the old file intact;
and the module runs without torch. The command-line side is in ``tests/test_outputs.py``.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from dtg.atomic import (
    atomic_writer,
    make_folder,
    open_append,
    remove_stale_temporaries,
    write_atomic,
)
from dtg.errors import DtgOutputError

OLD = b"old contents\n" * 100
#: Python that imports dtg.atomic as ``module`` (in a child process).
LOAD_ALONE = "import os, sys\nimport dtg.atomic as module\n"


def permissions_enforced(folder: Path) -> bool:
    """Whether a read-only folder refuses a new file here (not for root, nor with
    CAP_DAC_OVERRIDE): the read-only cases only mean something where it does."""
    probe = folder / "probe"
    probe.mkdir()
    probe.chmod(0o555)
    try:
        (probe / "x").touch()
    except PermissionError:
        return True
    finally:
        probe.chmod(0o755)
        (probe / "x").unlink(missing_ok=True)
        probe.rmdir()
    return False


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def leftovers(folder: Path) -> list[str]:
    """The temporary files a writer left in ``folder``."""
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_bytes_and_text_read_back(tmp_path: Path) -> None:
    target = tmp_path / "a.bin"
    assert write_atomic(target, b"\x00\x01binary") == target
    assert target.read_bytes() == b"\x00\x01binary"
    write_atomic(target, "température\r\nligne 2\n")  # text: UTF-8, newlines as given
    assert target.read_bytes() == "température\r\nligne 2\n".encode()
    with atomic_writer(target, "w", encoding="latin-1") as file:
        file.write("é")
    assert target.read_bytes() == b"\xe9"
    assert names(tmp_path) == ["a.bin"]


@pytest.mark.parametrize("error", [ValueError("bad data"), KeyboardInterrupt()])
def test_a_writer_that_raises_leaves_the_old_file(tmp_path: Path, error: BaseException) -> None:
    target = tmp_path / "checkpoint.pt"
    target.write_bytes(OLD)
    with pytest.raises(type(error)):
        with atomic_writer(target) as file:
            file.write(b"half of the new")
            file.flush()
            raise error
    assert target.read_bytes() == OLD
    assert names(tmp_path) == ["checkpoint.pt"]


def test_a_writer_that_raises_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        with atomic_writer(tmp_path / "new.txt", "w") as file:
            file.write("x")
            raise RuntimeError
    assert names(tmp_path) == []


def test_a_killed_writer_leaves_the_old_file_and_a_temporary_to_clean(tmp_path: Path) -> None:
    target = tmp_path / "samples[1].npy"  # glob characters in the name
    target.write_bytes(OLD)
    (tmp_path / "other.tmp").write_text("not ours")
    (tmp_path / ".samples[1].npy.keep").write_text("not a temporary")
    script = (
        f"{LOAD_ALONE}"
        "with module.atomic_writer(sys.argv[1]) as file:\n"
        "    file.write(b'new' * 1000)\n"
        "    file.flush()\n"
        "    os._exit(9)  # killed: no cleanup runs\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(target)], timeout=120)
    assert done.returncode == 9
    assert target.read_bytes() == OLD
    stale = [n for n in names(tmp_path) if n.startswith(".samples[1].npy.") and n.endswith(".tmp")]
    assert len(stale) == 1 and (tmp_path / stale[0]).read_bytes() == b"new" * 1000
    assert remove_stale_temporaries(target) == 1
    assert names(tmp_path) == [".samples[1].npy.keep", "other.tmp", "samples[1].npy"]
    assert remove_stale_temporaries(tmp_path / "absent") == 0


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_permissions_are_kept(tmp_path: Path) -> None:
    kept = tmp_path / "kept.dtg"
    kept.write_text("old")
    kept.chmod(0o640)
    write_atomic(kept, "new")
    assert kept.stat().st_mode & 0o777 == 0o640 and kept.read_text() == "new"


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
@pytest.mark.parametrize(("umask", "expected"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_new_files_follow_the_umask(tmp_path: Path, umask: int, expected: int) -> None:
    saved = os.umask(umask)
    try:
        write_atomic(tmp_path / "fresh.txt", "x")
        with open_append(tmp_path / "log.jsonl") as log:
            log.write("{}\n")
        reference = tmp_path / "reference.txt"
        reference.write_text("x")  # what a plain open(…, "w") gives
    finally:
        os.umask(saved)
    assert reference.stat().st_mode & 0o777 == expected  # the reference itself
    assert (tmp_path / "fresh.txt").stat().st_mode & 0o777 == expected
    assert (tmp_path / "log.jsonl").stat().st_mode & 0o777 == expected


def test_bad_calls_are_refused_before_writing(tmp_path: Path) -> None:
    missing = tmp_path / "missing" / "a.txt"
    with pytest.raises(DtgOutputError) as info:
        write_atomic(missing, "x")
    assert (
        info.value.message == f"cannot write {missing}: its folder {missing.parent} does not exist"
    )
    with pytest.raises(ValueError, match="mode 'w' or 'wb'"):
        with atomic_writer(tmp_path / "a.txt", "a"):
            pass
    with pytest.raises(TypeError, match="bytes or str, not int"):
        write_atomic(tmp_path / "a.txt", 3)  # type: ignore[arg-type]
    assert names(tmp_path) == []


def test_the_module_imports_nothing_heavy() -> None:
    code = f"{LOAD_ALONE}heavy = {{'torch', 'matplotlib'}} & set(sys.modules)\nassert not heavy, heavy\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_plots_are_written_atomically(tmp_path: Path) -> None:
    import torch  # the runtime needs torch; the rest of this file does not

    from dtg.runtime import plot_samples

    space = SimpleNamespace(kind="real", shape=(2,), vocab=None)
    points = torch.randn(100, 2, generator=torch.Generator().manual_seed(0))
    picture = plot_samples(points, space, tmp_path / "samples.png")
    assert picture.read_bytes().startswith(b"\x89PNG") and names(tmp_path) == ["samples.png"]
    (tmp_path / "old.xyz").write_bytes(OLD)
    with pytest.raises(ValueError, match="cannot draw a picture as '.xyz'"):
        plot_samples(points, space, tmp_path / "old.xyz")
    assert (tmp_path / "old.xyz").read_bytes() == OLD
    assert names(tmp_path) == ["old.xyz", "samples.png"]


# ------------------------------------------------------------------ targets that are not files


def refused(path: Path, *says: str) -> DtgOutputError:
    """Writing ``path`` (both ways) raises one DtgOutputError naming it and saying ``says``."""
    for attempt in (lambda: write_atomic(path, b"new"), lambda: open_append(path)):
        with pytest.raises(DtgOutputError) as info:
            attempt()
        assert info.value.message.startswith(f"cannot write {path}: ")
        for text in says:
            assert text in info.value.message
    return info.value


def a_device(folder: Path) -> Path:
    """A character device to write to: a copy of /dev/null's node in ``folder`` where this user
    may make one (root), else /dev/null itself where its folder is not writable. So a broken
    writer that renames over its target replaces the copy, never the machine's /dev/null."""
    node = folder / "null"
    try:
        os.mknod(node, 0o666 | stat.S_IFCHR, os.stat(os.devnull).st_rdev)
    except OSError:  # not root: /dev is not writable either
        if os.access(os.path.dirname(os.devnull), os.W_OK):
            pytest.skip("no device node can be made here, and /dev is writable")
        return Path(os.devnull)
    return node


@pytest.mark.skipif(os.name != "posix", reason="POSIX links")
def test_a_link_is_never_replaced(tmp_path: Path) -> None:
    target = tmp_path / "real.npy"
    target.write_bytes(OLD)
    (tmp_path / "link.npy").symlink_to("real.npy")
    (tmp_path / "dangling.npy").symlink_to("nowhere.npy")
    (tmp_path / "device.npy").symlink_to(os.devnull)
    error = refused(tmp_path / "link.npy", "is a symbolic link to real.npy", "will not replace a")
    assert "write to the link's target or remove the link" in error.message
    refused(tmp_path / "dangling.npy", "symbolic link to nowhere.npy (which does not exist)")
    refused(tmp_path / "device.npy", f"symbolic link to {os.devnull} (a character device)")
    assert os.readlink(tmp_path / "link.npy") == "real.npy" and target.read_bytes() == OLD
    assert os.readlink(tmp_path / "dangling.npy") == "nowhere.npy"
    assert names(tmp_path) == ["dangling.npy", "device.npy", "link.npy", "real.npy"]


@pytest.mark.skipif(os.name != "posix", reason="POSIX special files")
def test_special_files_are_refused_by_kind_without_opening_them(
    tmp_path: Path, monkeypatch
) -> None:
    os.mkfifo(tmp_path / "pipe")  # opening it for writing would wait for a reader forever
    (tmp_path / "folder").mkdir()
    monkeypatch.chdir(tmp_path)  # a socket's path is limited to ~100 bytes: bind a short one
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind("sock")
        refused(tmp_path / "sock", "is a socket, not a regular file")
    finally:
        server.close()
    refused(tmp_path / "pipe", "is a named pipe (FIFO), not a regular file")
    refused(tmp_path / "folder", "is a folder, not a file")
    device = a_device(tmp_path)  # never the real /dev/null where a bug could replace it
    refused(device, "is a character device, not a regular file")
    assert stat.S_ISCHR(os.stat(device).st_mode)  # a rename would have replaced the node
    assert stat.S_ISFIFO(os.stat(tmp_path / "pipe").st_mode)
    assert leftovers(device.parent) == []
    assert set(names(tmp_path)) - {"null"} == {"folder", "pipe", "sock"}


# ------------------------------------------------------------------ unwritable outputs


def test_a_path_under_a_file_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    for path in (tmp_path / "afile" / "out.npy", tmp_path / "afile" / "run" / "checkpoint.pt"):
        with pytest.raises(DtgOutputError) as info:
            write_atomic(path, "x")
        assert (
            info.value.message
            == f"cannot write {path}: {tmp_path / 'afile'} is a file, not a folder"
        )
    with pytest.raises(DtgOutputError, match="afile is a file, not a folder"):
        make_folder(tmp_path / "afile" / "run")
    with pytest.raises(DtgOutputError) as info:
        make_folder(tmp_path / "afile")
    assert info.value.message == f"cannot write {tmp_path / 'afile'}: it is a file, not a folder"
    assert make_folder(tmp_path / "a" / "b") == tmp_path / "a" / "b"
    assert make_folder(tmp_path / "a" / "b").is_dir()  # an existing folder is fine
    assert names(tmp_path) == ["a", "afile"] and (tmp_path / "afile").read_text() == "x"


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_read_only_folders_and_files(tmp_path: Path) -> None:
    if not permissions_enforced(tmp_path):
        pytest.skip("permission bits are not enforced for this user (root)")
    folder = tmp_path / "ro"
    folder.mkdir()
    (folder / "old.npy").write_bytes(OLD)
    (tmp_path / "locked.txt").write_bytes(OLD)
    (tmp_path / "locked.txt").chmod(0o444)
    folder.chmod(0o555)
    try:
        for path in (folder / "new.npy", folder / "old.npy"):
            with pytest.raises(DtgOutputError) as info:
                write_atomic(path, b"new")
            assert info.value.message == f"cannot write {path}: Permission denied"
        with pytest.raises(DtgOutputError, match=r"ro/run: Permission denied"):
            make_folder(folder / "run")
        with pytest.raises(DtgOutputError, match=r"ro/new.jsonl: Permission denied"):
            open_append(folder / "new.jsonl")
        assert names(folder) == ["old.npy"] and (folder / "old.npy").read_bytes() == OLD
    finally:
        folder.chmod(0o755)
    with pytest.raises(
        DtgOutputError, match=r"locked.txt: Permission denied \(the file is read-only"
    ):
        write_atomic(tmp_path / "locked.txt", b"new")
    assert (tmp_path / "locked.txt").read_bytes() == OLD


def no_space(*args: object) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("where", ["fsync", "write", "replace"])
def test_a_full_disk_leaves_the_old_file(tmp_path: Path, monkeypatch, where: str) -> None:
    target = tmp_path / "checkpoint.pt"
    target.write_bytes(OLD)
    if where == "write":  # what file.write (or torch.save into the file) raises on a full disk

        def writer() -> None:
            with atomic_writer(target) as file:
                file.write(b"half")
                no_space()

    else:
        monkeypatch.setattr(os, where, no_space)

        def writer() -> None:
            write_atomic(target, b"new" * 1000)

    with pytest.raises(DtgOutputError) as info:
        writer()
    monkeypatch.undo()
    assert info.value.message == f"cannot write {target}: No space left on device"
    assert target.read_bytes() == OLD and names(tmp_path) == ["checkpoint.pt"]


@pytest.mark.skipif(os.name != "posix", reason="RLIMIT_FSIZE and SIGXFSZ")
def test_a_real_write_error_from_the_kernel(tmp_path: Path) -> None:
    """The file-size limit (``ulimit -f``) makes the kernel fail a write with EFBIG, as a full
    disk fails it with ENOSPC: the buffered write, the flush or the close meets it."""
    target = tmp_path / "samples.npy"
    target.write_bytes(OLD)
    script = (
        "import resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.RLIM_INFINITY))\n"
        "from dtg.atomic import write_atomic, open_append\n"
        "from dtg.errors import DtgOutputError\n"
        "for attempt in (lambda: write_atomic(sys.argv[1], b'x' * 100_000),\n"
        "                lambda: open_append(sys.argv[2]).write('y' * 100_000)):\n"
        "    try:\n"
        "        attempt()\n"
        "    except DtgOutputError as error:\n"
        "        print(error.message)\n"
    )
    log = tmp_path / "metrics.jsonl"
    done = subprocess.run(
        [sys.executable, "-c", script, str(target), str(log)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"cannot write {target}: File too large",
        f"cannot write {log}: File too large",
    ]
    assert target.read_bytes() == OLD
    assert names(tmp_path) == ["metrics.jsonl", "samples.npy"]


def test_appending_reports_a_full_disk_at_the_write(tmp_path: Path, monkeypatch) -> None:
    log = tmp_path / "metrics.jsonl"
    log.write_text('{"step": 1}\n')
    with open_append(log) as file:
        file.write('{"step": 2}\n')
        file.flush()
        monkeypatch.setattr(os, "write", no_space)
        with pytest.raises(DtgOutputError) as info:
            file.write('{"step": 3}\n')
        monkeypatch.undo()
    assert file.closed
    file.close()  # a second close does nothing
    assert info.value.message == f"cannot write {log}: No space left on device"
    assert log.read_text() == '{"step": 1}\n{"step": 2}\n'

"""dtg.atomic: a rewritten file is the old one or the new one whole, never a torn mix.

The checks: what is written reads back; a writer that raises (or is interrupted) leaves the old
file byte for byte and no temporary file; a process killed in the middle of a write leaves the
old file and a temporary that :func:`remove_stale_temporaries` clears; permissions are kept;
and the module runs without torch.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

import dtg.atomic
from dtg.atomic import atomic_writer, remove_stale_temporaries, write_atomic

OLD = b"old contents\n" * 100
#: Python that loads dtg/atomic.py as ``module`` by itself (not through the package).
LOAD_ALONE = (
    "import importlib.util, os, sys\n"
    f"spec = importlib.util.spec_from_file_location('atomic', {dtg.atomic.__file__!r})\n"
    "module = importlib.util.module_from_spec(spec)\n"
    "spec.loader.exec_module(module)\n"
)


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


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
def test_permissions_are_kept_or_follow_the_umask(tmp_path: Path) -> None:
    kept = tmp_path / "kept.dtg"
    kept.write_text("old")
    kept.chmod(0o640)
    write_atomic(kept, "new")
    assert kept.stat().st_mode & 0o777 == 0o640 and kept.read_text() == "new"
    umask = os.umask(0o022)
    try:
        write_atomic(tmp_path / "fresh.txt", "x")
        reference = tmp_path / "reference.txt"
        reference.write_text("x")  # what a plain open(…, "w") gives
    finally:
        os.umask(umask)
    fresh_mode = (tmp_path / "fresh.txt").stat().st_mode & 0o777
    assert fresh_mode == reference.stat().st_mode & 0o777 == 0o644


def test_bad_calls_are_refused_before_writing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_atomic(tmp_path / "missing" / "a.txt", "x")
    with pytest.raises(ValueError, match="mode 'w' or 'wb'"):
        with atomic_writer(tmp_path / "a.txt", "a"):
            pass
    with pytest.raises(TypeError, match="bytes or str, not int"):
        write_atomic(tmp_path / "a.txt", 3)  # type: ignore[arg-type]
    assert names(tmp_path) == []


def test_the_module_imports_nothing_heavy() -> None:
    code = f"{LOAD_ALONE}heavy = {{'torch', 'numpy', 'dtg'}} & set(sys.modules)\nassert not heavy, heavy\n"
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

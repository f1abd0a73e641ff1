"""Write a file atomically: a reader (or a crash) sees the old file or the new one whole.

Every file dtg rewrites in place — checkpoints, ``dtg sample -o``, ``dtg fmt`` in place, the
outputs of ``compile -o`` and ``render`` — goes through this module. The data is written to a
temporary file *in the same folder* (so the final rename never crosses file systems), flushed and
``fsync``-ed, then ``os.replace``-d over the target; the folder is ``fsync``-ed too, so that the
rename itself survives a power cut (best effort: not every platform allows it). When the writer
raises, or the process is interrupted before the rename, the temporary file is removed and the old
file is untouched. A process killed outright (SIGKILL) may leave a temporary file behind; its name
is ``.NAME.XXXXXXXX.tmp`` beside ``NAME``, and :func:`remove_stale_temporaries` clears them.

The new file gets the permission bits of the file it replaces, or, for a new file, those an
ordinary ``open(path, "w")`` would give (``0o666`` less the umask). This module imports nothing
heavy (no torch), so the front end uses it too.
"""

from __future__ import annotations

import glob
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

__all__ = ["write_atomic", "atomic_writer", "remove_stale_temporaries"]

_SUFFIX = ".tmp"


def _temporary_name(path: Path) -> str:
    return f".{path.name}.{secrets.token_hex(4)}{_SUFFIX}"


def _create_temporary(path: Path) -> tuple[int, Path]:
    """A new, empty temporary file beside ``path``: ``(file descriptor, its path)``."""
    while True:
        temporary = path.with_name(_temporary_name(path))
        try:  # 0o666 less the umask, like open(path, "w"); O_EXCL: never reuse a file
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:  # pragma: no cover - 32 random bits collided
            continue
        return descriptor, temporary


def _sync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (best effort: not every platform opens folders)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


@contextmanager
def atomic_writer(
    path: str | Path, mode: str = "wb", encoding: str | None = None, newline: str | None = None
) -> Iterator[IO[Any]]:
    """A file object whose contents replace ``path`` when the ``with`` block ends normally.

    :param path: the file to (re)write; its folder must exist.
    :param mode: ``"wb"`` (bytes) or ``"w"`` (text).
    :param encoding: the text encoding (``"w"`` only; default UTF-8).
    :param newline: as for :func:`open` (``"w"`` only; ``""`` writes ``\\n`` untranslated).
    :returns: a context manager yielding the open temporary file.
    :raises ValueError: for another ``mode``.
    :raises OSError: when the folder is missing or not writable (nothing is written then).

    When the block raises, the temporary file is removed, the exception propagates and ``path``
    keeps its old contents (or stays absent).
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_writer writes whole files: mode 'w' or 'wb', not {mode!r}")
    path = Path(path)
    try:
        keep_mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        keep_mode = None
    descriptor, temporary = _create_temporary(path)
    try:
        text = {"encoding": encoding or "utf-8", "newline": newline} if mode == "w" else {}
        with os.fdopen(descriptor, mode, **text) as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        if keep_mode is not None:
            os.chmod(temporary, keep_mode)
        os.replace(temporary, path)
    except BaseException:  # KeyboardInterrupt too: never leave a half-written temporary file
        temporary.unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)


def write_atomic(path: str | Path, data: bytes | str, encoding: str = "utf-8") -> Path:
    """Replace the contents of ``path`` with ``data`` atomically (see the module docstring).

    :param path: the file to (re)write; its folder must exist.
    :param data: bytes, or text (written with ``encoding``, newlines untranslated).
    :returns: ``path`` as a :class:`~pathlib.Path`.
    :raises TypeError: when ``data`` is neither bytes nor text.
    """
    if isinstance(data, str):
        with atomic_writer(path, "w", encoding=encoding, newline="") as file:
            file.write(data)
    elif isinstance(data, (bytes, bytearray, memoryview)):
        with atomic_writer(path, "wb") as file:
            file.write(data)
    else:
        raise TypeError(f"write_atomic writes bytes or str, not {type(data).__name__}")
    return Path(path)


def remove_stale_temporaries(path: str | Path) -> int:
    """Delete the temporary files a killed writer of ``path`` left beside it.

    Call it only where no other process may be writing ``path`` at the same moment (e.g. when a
    training run starts in its own folder).

    :param path: the target file (it need not exist).
    :returns: how many temporary files were removed.
    """
    path = Path(path)
    removed = 0
    for stale in path.parent.glob(glob.escape(f".{path.name}.") + f"*{_SUFFIX}"):
        stale.unlink(missing_ok=True)
        removed += 1
    return removed

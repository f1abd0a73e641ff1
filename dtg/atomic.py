"""Write a file atomically: a reader (or a crash) sees the old file or the new one whole.

Every file dtg rewrites in place — checkpoints, ``metrics.jsonl``, ``dtg sample -o``, ``dtg fmt``
in place, the outputs of ``compile -o``, ``render`` and ``--plot`` — goes through this module. The
data is written to a temporary file *in the same folder* (so the final rename never crosses file
systems), flushed and ``fsync``-ed, then ``os.replace``-d over the target; the folder is
``fsync``-ed too, so that the rename itself survives a power cut (best effort: not every platform
allows it). When the writer raises, or the process is interrupted before the rename, the temporary
file is removed and the old file is untouched. A process killed outright (SIGKILL) may leave a
temporary file behind; its name is ``.NAME.XXXXXXXX.tmp`` beside ``NAME``, and
:func:`remove_stale_temporaries` clears them.

Only regular files are replaced. A target that is a symbolic link, a folder, a device, a named
pipe or a socket is refused (a rename would replace the link or the device node itself with a
regular file), and so is an existing file the user may not write (a read-only file). Every
failure to write — a missing or read-only folder, a full disk, a path under a file — is one
:class:`~dtg.errors.DtgOutputError` naming the path and the OS reason (``output_error``), with the
temporary file removed and the old file intact.

The new file gets the permission bits of the file it replaces, or, for a new file, those an
ordinary ``open(path, "w")`` would give (``0o666`` less the umask). This module imports nothing
heavy (no torch), so the front end uses it too.
"""

from __future__ import annotations

import errno
import glob
import os
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from .errors import output_error

__all__ = [
    "write_atomic",
    "atomic_writer",
    "remove_stale_temporaries",
    "make_folder",
    "open_append",
    "AppendFile",
    "kind_of",
]

_SUFFIX = ".tmp"

#: What a file that is not a regular file is, by the test of its ``st_mode``.
_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISLNK, "a symbolic link"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
)


def kind_of(mode: int) -> str | None:
    """What a file is, for a message: ``"a folder"``, ``"a named pipe (FIFO)"``, …

    :param mode: the file's ``st_mode`` (from :func:`os.stat` or :func:`os.lstat`).
    :returns: the kind with its article, or ``None`` for a regular file.
    """
    if stat.S_ISREG(mode):
        return None
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _refusal(path: Path, mode: int) -> str:
    """Why dtg will not replace ``path`` (whose ``lstat`` mode is ``mode``), as one sentence."""
    if stat.S_ISDIR(mode):
        return "it is a folder, not a file"
    if not stat.S_ISLNK(mode):
        return f"it is {kind_of(mode)}, not a regular file; dtg writes only regular files"
    try:
        target = os.readlink(path)
    except OSError:  # pragma: no cover - removed in between
        target = "?"
    try:
        what = kind_of(os.stat(path).st_mode)
    except FileNotFoundError:
        what = "which does not exist"
    except OSError:  # a loop of links, a folder we may not search
        what = None
    shown = f"{target} ({what})" if what else target
    return (
        f"it is a symbolic link to {shown}; dtg replaces files atomically and will not replace"
        " a link: write to the link's target or remove the link"
    )


def _reason(path: Path, error: OSError) -> str:
    """The OS reason for a failure to write ``path``, said about the right file."""
    if error.errno in (errno.ENOENT, errno.ENOTDIR, errno.EEXIST):
        blocker = _file_in_the_way(path)
        if blocker is not None:
            return f"{blocker} is a file, not a folder"
        if error.errno == errno.ENOENT and not os.path.isdir(path.parent):
            return f"its folder {path.parent} does not exist"
    return error.strerror or str(error)


def _file_in_the_way(path: Path) -> Path | None:
    """The first of ``path``'s folders that exists but is not a folder (``afile`` of
    ``afile/run/x``), or ``None``."""
    for folder in reversed(path.parents):
        if os.path.exists(folder) and not os.path.isdir(folder):
            return folder
    return None


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


def _existing_mode(path: Path) -> int | None:
    """The permission bits of the regular file ``path`` replaces (``None``: there is none).

    :raises DtgOutputError: when ``path`` is not a regular file, or is a file the user may not
        write.
    """
    try:
        status = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as error:  # a path under a file, a name too long, a folder we may not search
        raise output_error(path, _reason(path, error)) from None
    if not stat.S_ISREG(status.st_mode):
        raise output_error(path, _refusal(path, status.st_mode))
    if not os.access(path, os.W_OK):
        raise output_error(path, "Permission denied (the file is read-only)")
    return status.st_mode & 0o7777


@contextmanager
def atomic_writer(
    path: str | Path, mode: str = "wb", encoding: str | None = None, newline: str | None = None
) -> Iterator[IO[Any]]:
    """A file object whose contents replace ``path`` when the ``with`` block ends normally.

    :param path: the file to (re)write: absent, or a regular file; its folder must exist.
    :param mode: ``"wb"`` (bytes) or ``"w"`` (text).
    :param encoding: the text encoding (``"w"`` only; default UTF-8).
    :param newline: as for :func:`open` (``"w"`` only; ``""`` writes ``\\n`` untranslated).
    :returns: a context manager yielding the open temporary file.
    :raises ValueError: for another ``mode``.
    :raises DtgOutputError: when ``path`` is a link, a folder, a device, a pipe or a socket (nothing
        is written then), or when creating, writing, syncing or renaming fails with an
        :class:`OSError` — one raised by the writes of the ``with`` block included (a full disk).

    When the block raises, the temporary file is removed, the exception propagates (an
    :class:`OSError` as :class:`~dtg.errors.DtgOutputError`) and ``path`` keeps its old contents
    (or stays absent).
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_writer writes whole files: mode 'w' or 'wb', not {mode!r}")
    path = Path(path)
    keep_mode = _existing_mode(path)
    try:
        descriptor, temporary = _create_temporary(path)
    except OSError as error:
        raise output_error(path, _reason(path, error)) from None
    try:
        text = {"encoding": encoding or "utf-8", "newline": newline} if mode == "w" else {}
        with os.fdopen(descriptor, mode, **text) as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        if keep_mode is not None:
            os.chmod(temporary, keep_mode)
        os.replace(temporary, path)
    except OSError as error:  # a full disk, a quota, an I/O error: the old file stays
        temporary.unlink(missing_ok=True)
        raise output_error(path, _reason(path, error)) from None
    except BaseException:  # KeyboardInterrupt too: never leave a half-written temporary file
        temporary.unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)


def make_folder(path: str | Path) -> Path:
    """Create a folder for outputs (``--out``), with its parents; an existing folder is fine.

    :param path: the folder.
    :returns: ``path`` as a :class:`~pathlib.Path`.
    :raises DtgOutputError: naming the path and the reason when it cannot be created: a file (or
        a device, a broken link …) in its place or in place of one of its parents, a read-only
        parent, a full disk.
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:  # something that is not a folder has the name
        try:
            kind = kind_of(os.lstat(path).st_mode) or "a file"
        except OSError:  # pragma: no cover - removed in between
            kind = "not a folder"
        raise output_error(path, f"it is {kind}, not a folder") from None
    except OSError as error:
        raise output_error(path, _reason(path, error)) from None
    return path


class AppendFile:
    """A log file opened for appending whose writes raise :class:`~dtg.errors.DtgOutputError`.

    Each :meth:`write` is one unbuffered ``write`` of the encoded text to the end of the file (so a
    line is never split between two buffers, and a full disk is reported by the write that meets
    it, not later by a flush or the close). Use :func:`open_append` to open one.

    :param path: the file (for messages).
    :param descriptor: its open file descriptor (``O_APPEND``).
    :param encoding: the text encoding.
    """

    def __init__(self, path: Path, descriptor: int, encoding: str) -> None:
        self.path, self.descriptor, self.encoding = path, descriptor, encoding

    def write(self, text: str) -> int:
        """Append ``text``.

        :param text: what to append.
        :returns: the number of characters written (all of them).
        :raises DtgOutputError: when the write fails (a full disk, a quota, an I/O error).
        """
        data = memoryview(text.encode(self.encoding))
        try:
            while data:
                data = data[os.write(self.descriptor, data) :]
        except OSError as error:
            raise output_error(self.path, _reason(self.path, error)) from None
        return len(text)

    def flush(self) -> None:
        """Nothing to do: every :meth:`write` has reached the operating system already."""

    def close(self) -> None:
        """Close the file (a second close does nothing)."""
        if self.descriptor >= 0:
            descriptor, self.descriptor = self.descriptor, -1
            os.close(descriptor)

    @property
    def closed(self) -> bool:
        """:returns: whether :meth:`close` was called."""
        return self.descriptor < 0

    def __enter__(self) -> AppendFile:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()


def open_append(path: str | Path, encoding: str = "utf-8") -> AppendFile:
    """Open a log file (``metrics.jsonl``) for appending, creating it with the umask's bits.

    :param path: the file: absent or a regular file (a link, a folder, a device, a pipe or a
        socket is refused, without opening it: opening a pipe would wait for a reader).
    :param encoding: the text encoding of what is written.
    :returns: an :class:`AppendFile`.
    :raises DtgOutputError: naming the path and the reason when it cannot be opened.
    """
    path = Path(path)
    _existing_mode(path)
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    try:
        descriptor = os.open(path, flags, 0o666)
    except OSError as error:
        raise output_error(path, _reason(path, error)) from None
    return AppendFile(path, descriptor, encoding)


def write_atomic(path: str | Path, data: bytes | str, encoding: str = "utf-8") -> Path:
    """Replace the contents of ``path`` with ``data`` atomically (see the module docstring).

    :param path: the file to (re)write: absent, or a regular file; its folder must exist.
    :param data: bytes, or text (written with ``encoding``, newlines untranslated).
    :returns: ``path`` as a :class:`~pathlib.Path`.
    :raises TypeError: when ``data`` is neither bytes nor text.
    :raises DtgOutputError: when ``path`` cannot be written (see :func:`atomic_writer`).
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

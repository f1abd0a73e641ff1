"""Files on the command line: reading a ``.dtg`` file, picking a model, writing atomically.

A missing, unreadable or misnamed file is a usage error (exit 2), not a traceback. Every file the
CLI writes goes through :func:`write_atomic`, so an interrupted ``dtg fmt`` or ``dtg sample``
leaves the old file or the new one whole, never half of one; a target that is a link, a device, a
pipe or a socket is refused, and a failure to write (a read-only folder, a full disk) is a
:class:`~dtg.errors.DtgOutputError` naming the path (exit 1). See ``docs/outputs.md``.
"""

from __future__ import annotations

import stat
import sys
from pathlib import Path

from ..atomic import kind_of, write_atomic
from ..ir import ModelIR
from ..program import Program
from .errors import usage

__all__ = ["read_source", "pick_model", "write_atomic", "write_output"]


def read_source(path: str) -> bytes:
    """The bytes of a ``.dtg`` file.

    :param path: the file as given on the command line.
    :returns: its contents.
    :raises UsageError: when it does not exist, is a directory, a device or a socket, or cannot
        be read (a named pipe is read: ``dtg check <(…)`` gives one).
    """
    file = Path(path)
    if not file.exists():
        raise usage(f"no such file: {path}")
    if file.is_dir():
        raise usage(f"{path} is a directory, not a .dtg file")
    mode = file.stat().st_mode
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISSOCK(mode):  # /dev/zero never ends
        raise usage(f"{path} is {kind_of(mode)}, not a .dtg file")
    try:
        return file.read_bytes()
    except OSError as error:
        raise usage(f"cannot read {path}: {error.strerror}") from None


def pick_model(program: Program, name: str | None, file: str) -> ModelIR:
    """The model named by ``--model``, or the file's last one.

    :param program: the checked file.
    :param name: the ``--model`` value, or ``None``.
    :param file: the file as given on the command line (for the message).
    :returns: the model's IR.
    :raises UsageError: when no model has that name (the message lists the models).
    """
    try:
        return program.model(name)
    except KeyError:
        names = ", ".join(m.name for m in program.models)
        raise usage(f"no model '{name}' in {file} (models: {names})") from None


def write_output(text: str, output: str | None) -> None:
    """Write a command's text to ``-o OUT`` (and say so on stderr), or to stdout.

    :param text: what to write.
    :param output: the ``-o`` value; ``None`` or ``-`` means standard output.
    :raises UsageError: when the folder of ``output`` does not exist or ``output`` is a folder.
    :raises DtgOutputError: when ``output`` is not a regular file (a link, a device …) or cannot
        be written (a read-only folder, a path under a file, a full disk).
    """
    if output is None or output == "-":
        sys.stdout.write(text)
        return
    path = Path(output)
    if not path.parent.exists():
        raise usage(f"the folder of {output} does not exist")
    if path.is_dir():
        raise usage(f"{output} is a directory")
    write_atomic(path, text)
    print(f"wrote {output}", file=sys.stderr)

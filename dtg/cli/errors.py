"""How the ``dtg`` command line fails: :class:`UsageError` and the exit statuses.

Every command module raises :class:`UsageError` for a bad command line and lets a
:class:`~dtg.errors.DtgError` (a mistake in a ``.dtg`` file, the data or a checkpoint) propagate;
:func:`dtg.cli.main` turns each into one message on standard error and its exit status. This
module imports nothing, so that command modules can import it without importing ``dtg.cli``.
"""

from __future__ import annotations

__all__ = [
    "UsageError",
    "usage",
    "EXIT_OK",
    "EXIT_USER",
    "EXIT_USAGE",
    "EXIT_BUG",
    "EXIT_INTERRUPTED",
]

#: The command did what was asked.
EXIT_OK = 0
#: A mistake in a ``.dtg`` file, the data or a checkpoint (a :class:`~dtg.errors.DtgError`).
EXIT_USER = 1
#: A bad command line: a missing file, an unknown flag, a bad flag value.
EXIT_USAGE = 2
#: An internal error: a bug in dtg (the traceback is printed).
EXIT_BUG = 3
#: Stopped by Ctrl-C; 130 is what a shell reports for a process ended by SIGINT.
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """A bad command line (a missing file, a bad flag value): exit status 2."""


def usage(message: str) -> UsageError:
    """A :class:`UsageError` that prints as ``dtg: error: MESSAGE``.

    :param message: what is wrong with the command line.
    :returns: the error, for the caller to raise.
    """
    return UsageError(f"dtg: error: {message}")

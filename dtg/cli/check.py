"""``dtg check FILE…``: parse and check each file; one ``ok:`` line or one located error each."""

from __future__ import annotations

import argparse
import sys

from ..errors import DtgError
from ..program import loads
from .errors import EXIT_OK, EXIT_USER
from .files import read_source

__all__ = ["register", "cmd_check"]


def cmd_check(args: argparse.Namespace) -> int:
    """Check every file, going on past a bad one so that one run reports them all.

    :param args: ``files``.
    :returns: 0 when every file checks, else 1.
    :raises UsageError: for a missing or unreadable file.
    """
    status = EXIT_OK
    for path in args.files:
        data = read_source(path)
        try:
            program = loads(data, file=path)
        except DtgError as error:
            print(error.format(), file=sys.stderr)
            status = EXIT_USER
            continue
        count = len(program.models)
        print(f"ok: {path} ({count} model{'s' if count != 1 else ''})")
    return status


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``check`` to the ``dtg`` subcommands.

    :param commands: the subparsers of the main parser.
    """
    check = commands.add_parser("check", help="parse and check .dtg files")
    check.add_argument("files", nargs="+", metavar="FILE")
    check.set_defaults(run=cmd_check)

"""The ``dtg`` command line: a thin argparse layer over the library.

Exit codes: 0 success, 1 a user error in a ``.dtg`` file or data, 2 bad command-line usage.
A user mistake never prints a Python traceback; set ``DTG_DEBUG=1`` to see one anyway.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from . import __version__
from .errors import DtgError

__all__ = ["main", "build_parser", "UsageError"]

EXIT_OK, EXIT_USER, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A bad command line (a missing file, a bad flag value): exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse that raises :class:`UsageError` instead of exiting, so ``main`` decides."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: error: {message}\n{self.format_usage().rstrip()}")


def _read_source(path: str) -> bytes:
    """The bytes of a ``.dtg`` file; a missing or unreadable file is a usage error."""
    file = Path(path)
    if not file.exists():
        raise UsageError(f"dtg: error: no such file: {path}")
    if file.is_dir():
        raise UsageError(f"dtg: error: {path} is a directory, not a .dtg file")
    try:
        return file.read_bytes()
    except OSError as error:
        raise UsageError(f"dtg: error: cannot read {path}: {error.strerror}") from None


def cmd_check(args: argparse.Namespace) -> int:
    """``dtg check FILE…``: parse and check each file."""
    from .program import loads

    status = EXIT_OK
    for path in args.files:
        data = _read_source(path)
        try:
            program = loads(data, file=path)
        except DtgError as error:
            print(error.format(), file=sys.stderr)
            status = EXIT_USER
            continue
        count = len(program.models)
        print(f"ok: {path} ({count} model{'s' if count != 1 else ''})")
    return status


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one subcommand per stage (DESIGN.md §5)."""
    parser = _Parser(
        prog="dtg",
        description="dtg: destroy-then-generate models: check, compile, render, train, sample.",
    )
    parser.add_argument("--version", action="version", version=f"dtg {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    check = commands.add_parser("check", help="parse and check .dtg files")
    check.add_argument("files", nargs="+", metavar="FILE")
    check.set_defaults(run=cmd_check)

    for register in _EXTRA_COMMANDS:
        register(commands)
    return parser


# Later stages (compile, render, train, …) add their subcommands here.
_EXTRA_COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = []


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return int(args.run(args))
    except UsageError as error:
        print(str(error), file=sys.stderr)
        return EXIT_USAGE
    except DtgError as error:
        print(error.format(), file=sys.stderr)
        return EXIT_USER
    except KeyboardInterrupt:
        print("dtg: interrupted", file=sys.stderr)
        return 130
    except Exception:
        if os.environ.get("DTG_DEBUG"):
            raise
        import traceback

        print("dtg: internal error (this is a bug in dtg, please report it):", file=sys.stderr)
        traceback.print_exc()
        return 3

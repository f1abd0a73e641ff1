"""``dtg fmt FILE… [--check] [--diff]``: rewrite ``.dtg`` files in the canonical layout.

The layout is :mod:`dtg.fmt`'s; ``--check`` and ``--diff`` only report. ``dtg fmt -`` formats
standard input to standard output (for editors).
"""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

from ..fmt import format_source
from ..syntax import parse
from .errors import usage
from .files import read_source, write_atomic

__all__ = ["register", "cmd_fmt"]


def _read(path: str) -> str:
    """The text of a ``.dtg`` file; missing files are usage errors, bad UTF-8 a syntax error."""
    data = read_source(path)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        parse(data, path)  # raises the located DtgSyntaxError
        raise


def cmd_fmt(args: argparse.Namespace) -> int:
    """Format files in place, or report what would change.

    Every file is formatted in memory first, so a syntax error in any of them writes nothing.

    :param args: ``files``, ``check``, ``diff``.
    :returns: 0, or 1 with ``--check``/``--diff`` when some file would change.
    :raises UsageError: for a missing file, or ``-`` mixed with files.
    """
    if args.files == ["-"]:
        sys.stdout.write(format_source(sys.stdin.read(), "<stdin>"))
        return 0
    if "-" in args.files:
        raise usage("'-' (standard input) cannot be mixed with files")
    results = []
    for path in args.files:
        old = _read(path)
        results.append((path, old, format_source(old, path)))
    report_only = args.check or args.diff
    changed = False
    for path, old, new in results:
        if old == new:
            print(f"unchanged {path}")
            continue
        changed = True
        if args.diff:
            diff = difflib.unified_diff(
                old.splitlines(keepends=True), new.splitlines(keepends=True), path, path
            )
            sys.stdout.writelines(diff)
        if report_only:
            print(f"would reformat {path}")
        else:
            write_atomic(Path(path), new)
            print(f"formatted {path}")
    return 1 if report_only and changed else 0


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``fmt`` to the ``dtg`` subcommands.

    :param commands: the subparsers of the main parser.
    """
    fmt = commands.add_parser(
        "fmt",
        help="format .dtg files in place (canonical layout, comments kept)",
        description="Rewrite .dtg files in the canonical layout, keeping comments. "
        "'dtg fmt -' formats standard input to standard output.",
    )
    fmt.add_argument("files", nargs="+", metavar="FILE")
    fmt.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if a file would change"
    )
    fmt.add_argument(
        "--diff", action="store_true", help="write nothing; show the changes as a unified diff"
    )
    fmt.set_defaults(run=cmd_fmt)

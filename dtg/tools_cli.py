"""The ``dtg fmt`` and ``dtg new`` subcommands (registered into ``dtg.cli``'s subparsers).

``dtg fmt FILE…`` rewrites files in the canonical layout (:mod:`dtg.fmt`); ``--check`` and
``--diff`` only report. ``dtg fmt -`` formats standard input to standard output (for editors).
``dtg new TEMPLATE NAME.dtg`` writes a starter file (:mod:`dtg.templates`).
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
import tempfile
from pathlib import Path

from .templates import DESCRIPTIONS, TEMPLATES

__all__ = ["register", "cmd_fmt", "cmd_new", "write_atomic"]


def _usage(message: str) -> Exception:
    from .cli import UsageError  # lazily: dtg.cli imports the command modules

    return UsageError(f"dtg: error: {message}")


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and ``os.replace``.

    :param path: the file to (re)write; an existing file keeps its permission bits.
    :param text: the new contents (UTF-8).
    """
    mode = path.stat().st_mode & 0o777 if path.exists() else None
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as file:
            file.write(text)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read(path: str) -> str:
    """The text of a ``.dtg`` file; missing files are usage errors, bad UTF-8 a syntax error."""
    from .syntax import parse

    file = Path(path)
    if not file.exists():
        raise _usage(f"no such file: {path}")
    if file.is_dir():
        raise _usage(f"{path} is a directory, not a .dtg file")
    try:
        data = file.read_bytes()
    except OSError as error:
        raise _usage(f"cannot read {path}: {error.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        parse(data, path)  # raises the located DtgSyntaxError
        raise


def cmd_fmt(args: argparse.Namespace) -> int:
    """``dtg fmt FILE… [--check] [--diff]``: format files in place, or report what would change.

    Every file is formatted in memory first, so a syntax error in any of them writes nothing.

    :param args: ``files``, ``check``, ``diff``.
    :returns: 0, or 1 with ``--check``/``--diff`` when some file would change.
    """
    from .fmt import format_source

    if args.files == ["-"]:
        sys.stdout.write(format_source(sys.stdin.read(), "<stdin>"))
        return 0
    if "-" in args.files:
        raise _usage("'-' (standard input) cannot be mixed with files")
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


def cmd_new(args: argparse.Namespace) -> int:
    """``dtg new TEMPLATE NAME.dtg [--force]``: write a starter model named after the file.

    :param args: ``template``, ``output``, ``force``.
    :returns: 0.
    """
    from .templates import render

    if args.template not in TEMPLATES:
        raise _usage(f"unknown template '{args.template}' (templates: {', '.join(TEMPLATES)})")
    path = Path(args.output)
    if not path.suffix:
        path = path.with_suffix(".dtg")
    elif path.suffix != ".dtg":
        raise _usage(f"{args.output}: a dtg file name ends in .dtg")
    try:
        text = render(args.template, path.stem)
    except ValueError as error:
        raise _usage(f"{path.name}: {error}") from None
    if path.is_dir():
        raise _usage(f"{path} is a directory")
    if path.exists() and not args.force:
        raise _usage(f"{path} already exists (use --force to overwrite it)")
    if not path.parent.is_dir():
        raise _usage(f"the folder of {path} does not exist")
    write_atomic(path, text)
    print(f"created {path} from template '{args.template}' (model {path.stem})")
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``fmt`` and ``new`` to the ``dtg`` command line.

    :param commands: the subparsers object of :func:`dtg.cli.build_parser`.
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

    listing = "\n".join(f"  {name:<16}{DESCRIPTIONS[name]}" for name in TEMPLATES)
    new = commands.add_parser(
        "new",
        help="start a new .dtg file from a template",
        description="Write a starter .dtg file; the model is named after the file.",
        epilog=f"templates:\n{listing}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    new.add_argument("template", choices=list(TEMPLATES), metavar="TEMPLATE", help="the family")
    new.add_argument("output", metavar="NAME.dtg", help="the file to create")
    new.add_argument("--force", action="store_true", help="overwrite an existing file")
    new.set_defaults(run=cmd_new)

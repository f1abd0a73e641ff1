"""``dtg new TEMPLATE NAME.dtg [--force]``: write a starter model named after the file.

The templates are :mod:`dtg.templates`'; ``dtg new --help`` lists them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..templates import DESCRIPTIONS, TEMPLATES, render
from .errors import usage
from .files import write_atomic

__all__ = ["register", "cmd_new"]


def cmd_new(args: argparse.Namespace) -> int:
    """Write the starter file.

    :param args: ``template``, ``output``, ``force``.
    :returns: 0.
    :raises UsageError: for an unknown template, a name that is not a model name or does not end
        in ``.dtg``, an existing file without ``--force``, or a missing folder.
    """
    if args.template not in TEMPLATES:
        raise usage(f"unknown template '{args.template}' (templates: {', '.join(TEMPLATES)})")
    path = Path(args.output)
    if not path.suffix:
        path = path.with_suffix(".dtg")
    elif path.suffix != ".dtg":
        raise usage(f"{args.output}: a dtg file name ends in .dtg")
    try:
        text = render(args.template, path.stem)
    except ValueError as error:
        raise usage(f"{path.name}: {error}") from None
    if path.is_dir():
        raise usage(f"{path} is a directory")
    if path.exists() and not args.force:
        raise usage(f"{path} already exists (use --force to overwrite it)")
    if not path.parent.is_dir():
        raise usage(f"the folder of {path} does not exist")
    write_atomic(path, text)
    print(f"created {path} from template '{args.template}' (model {path.stem})")
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``new`` to the ``dtg`` subcommands.

    :param commands: the subparsers of the main parser.
    """
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

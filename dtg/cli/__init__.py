"""The ``dtg`` command line: a thin argparse layer over the library.

One module per command (``check``, ``compile``, ``render``, ``fmt``, ``new``, ``train``,
``sample``, ``eval``), each adding its subcommand with ``register(subparsers)``. Building the
parser imports no heavy stage: a command imports torch, pyro or graphviz only when it runs, so
``dtg check``, ``dtg fmt``, ``dtg compile --emit ast|ir`` and ``dtg render`` do not load torch
through the CLI. Command modules import :mod:`dtg.cli.errors`, never this package.

Exit codes: 0 success, 1 a user error in a ``.dtg`` file, the data or a checkpoint, 2 bad
command-line usage, 3 a bug in dtg, 130 interrupted. A user mistake never prints a Python
traceback; set ``DTG_DEBUG=1`` to see one anyway.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence

from .. import __version__
from ..errors import DtgError
from ..plugins import PluginError, load_plugin
from . import check, fmt, new, render, sample, train
from . import compile as compile_
from . import eval as eval_
from .errors import EXIT_BUG, EXIT_INTERRUPTED, EXIT_USAGE, EXIT_USER, UsageError, usage
from .parser import Parser

__all__ = ["main", "build_parser", "UsageError", "COMMANDS", "PLUGIN_COMMANDS"]

#: Each command's ``register``, in the order ``dtg --help`` lists them.
COMMANDS = (
    check.register,
    compile_.register,
    render.register,
    fmt.register,
    new.register,
    train.register,
    sample.register,
    eval_.register,
)

#: The commands that read a .dtg file, and so may need the user's Python rewards.
PLUGIN_COMMANDS = ("check", "compile", "render", "train", "sample", "eval")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one subcommand per stage (DESIGN.md §5).

    :returns: the parser; ``parse_args`` raises :class:`UsageError` for a bad command line.
    """
    parser = Parser(
        prog="dtg",
        description="dtg: destroy-then-generate models: check, compile, render, train, sample.",
    )
    parser.add_argument("--version", action="version", version=f"dtg {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    commands.required = True
    for register in COMMANDS:
        register(commands)
    for name in PLUGIN_COMMANDS:
        commands.choices[name].add_argument(
            "--plugin",
            action="append",
            metavar="FILE.py",
            help="import this Python file first (it registers rewards with "
            "dtg.register_reward); may be repeated",
        )
    return parser


def _load_plugins(args: argparse.Namespace) -> None:
    """Import every ``--plugin`` file; a broken one is a usage error."""
    for plugin in getattr(args, "plugin", None) or []:
        try:
            load_plugin(plugin)
        except PluginError as error:
            raise usage(str(error)) from None


def _interrupted(interrupt: KeyboardInterrupt) -> int:
    """Say where an interrupted run left its checkpoint (training saves one after Ctrl-C)."""
    checkpoint = getattr(interrupt, "checkpoint", None)
    if checkpoint is not None:
        print(
            f"dtg: interrupted after step {getattr(interrupt, 'step', '?')}; checkpoint saved:"
            f" {checkpoint} (continue with --resume)",
            file=sys.stderr,
        )
    else:
        print("dtg: interrupted", file=sys.stderr)
    return EXIT_INTERRUPTED


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI.

    :param argv: the arguments after ``dtg`` (default: ``sys.argv[1:]``).
    :returns: the exit status (see the module docstring).
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        _load_plugins(args)
        return int(args.run(args))
    except UsageError as error:
        print(str(error), file=sys.stderr)
        return EXIT_USAGE
    except DtgError as error:
        print(error.format(), file=sys.stderr)
        return EXIT_USER
    except KeyboardInterrupt as interrupt:
        return _interrupted(interrupt)
    except Exception:
        if os.environ.get("DTG_DEBUG"):
            raise
        print("dtg: internal error (this is a bug in dtg, please report it):", file=sys.stderr)
        traceback.print_exc()
        return EXIT_BUG

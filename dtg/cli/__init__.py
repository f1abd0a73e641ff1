"""The ``dtg`` command line: a thin argparse layer over the library.

One module per command (``check``, ``compile``, ``render``, ``fmt``, ``new``, ``train``,
``sample``, ``eval``, ``score``, ``compare``, ``export``), each adding its subcommand with ``register(subparsers)``. Building the
parser imports no heavy stage: a command imports torch, pyro or graphviz only when it runs, so
``dtg check``, ``dtg fmt``, ``dtg compile --emit ast|ir`` and ``dtg render`` do not load torch
through the CLI. Command modules import :mod:`dtg.cli.errors`, never this package.

Exit codes: 0 success, 1 a user error in a ``.dtg`` file, the data or a checkpoint, 2 bad
command-line usage, 3 a bug in dtg, 130 interrupted (Ctrl-C), 141 the reader of the output left
(``dtg eval … | head``), 143 stopped by SIGTERM. A user mistake never prints a Python
traceback; set ``DTG_DEBUG=1`` to see one anyway.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import traceback
from collections.abc import Sequence

from .. import __version__
from ..errors import DtgError
from ..interrupt import RECEIVED, exit_status, signal_name, stop_now
from ..plugins import PluginError, load_plugin
from . import check, compare, export, fmt, new, render, sample, score, train
from . import compile as compile_
from . import eval as eval_
from .errors import EXIT_BUG, EXIT_USAGE, EXIT_USER, UsageError, usage
from .parser import Parser
from .quiet import quiet_warnings

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
    score.register,
    compare.register,
    export.register,
)

#: The commands that read a .dtg file, and so may need the user's Python rewards.
PLUGIN_COMMANDS = ("check", "compile", "render", "train", "sample", "eval", "score", "compare")


#: The status of a command whose reader closed its output (128 + SIGPIPE, as the shell reports).
EXIT_BROKEN_PIPE = 141

VERBOSE_HELP = "show the warnings of torch, Pyro and other libraries (hidden by default)"


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
    parser.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    for register in COMMANDS:
        register(commands)
    for subparser in commands.choices.values():  # `dtg train F --verbose` works too
        subparser.add_argument(
            "--verbose", action="store_true", default=argparse.SUPPRESS, help=VERBOSE_HELP
        )
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
    """Say where an interrupted run left its checkpoint (training saves one after a signal).

    :returns: ``128 + signal``, as a shell reports a process ended by it (130 for Ctrl-C).
    """
    signum = getattr(interrupt, "signum", signal.SIGINT)
    checkpoint = getattr(interrupt, "checkpoint", None)
    by = "interrupted" if signum == signal.SIGINT else f"stopped by {signal_name(signum)}"
    if os.environ.get("RANK", "0") != "0":
        pass  # a distributed job: rank 0 reports for all of its ranks
    elif checkpoint is not None:
        print(
            f"dtg: {by} after step {getattr(interrupt, 'step', '?')}; checkpoint saved:"
            f" {checkpoint} (continue with --resume)",
            file=sys.stderr,
        )
    else:
        print(f"dtg: {by}", file=sys.stderr)
    return exit_status(interrupt)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI.

    :param argv: the arguments after ``dtg`` (default: ``sys.argv[1:]``).
    :returns: the exit status (see the module docstring).
    """
    main_thread = threading.current_thread() is threading.main_thread()
    if main_thread:  # training puts its own handlers over these
        previous = signal.signal(signal.SIGTERM, stop_now)
        previous_int = signal.signal(signal.SIGINT, stop_now)
    try:
        args = build_parser().parse_args(argv)
        with quiet_warnings(args.verbose):
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
    except BrokenPipeError:  # the reader left (`dtg eval … | head`): stop quietly, as cat does
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the interpreter's final flush must not fail too
        return EXIT_BROKEN_PIPE
    except Exception:
        if os.environ.get("DTG_DEBUG"):
            raise
        print("dtg: internal error (this is a bug in dtg, please report it):", file=sys.stderr)
        traceback.print_exc()
        return EXIT_BUG
    finally:
        RECEIVED.clear()  # a later in-process run starts afresh
        if main_thread:  # a late SIGTERM (at exit) ends the process as usual, not in a handler
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is stop_now else previous)
            signal.signal(
                signal.SIGINT,
                signal.default_int_handler if previous_int is stop_now else previous_int,
            )

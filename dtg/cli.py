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
EMIT_STAGES = ["ast", "ir", "pyro"]


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


def cmd_compile(args: argparse.Namespace) -> int:
    """``dtg compile FILE --emit ast|ir|pyro [-o OUT]``: dump one stage of the pipeline."""
    from .dump import dump_ast, dump_ir
    from .program import loads

    program = loads(_read_source(args.file), file=args.file)
    if args.emit == "ast":
        text = dump_ast(program.module)
    elif args.emit == "ir":
        models = [_pick_model(program, args.model)] if args.model else program.models
        text = "\n\n".join(dump_ir(m) for m in models)
    else:
        from .backends.pyro_source import emit_pyro

        text = emit_pyro(_pick_model(program, args.model))
    _write_text(text + "\n", args.output)
    return EXIT_OK


def _pick_model(program, name: str | None):
    """The model named by ``--model``, or the file's last one; unknown names are usage errors."""
    try:
        return program.model(name)
    except KeyError:
        names = ", ".join(m.name for m in program.models)
        raise UsageError(
            f"dtg: error: no model '{name}' in {program.file} (models: {names})"
        ) from None


def _write_text(text: str, output: str | None) -> None:
    if output is None or output == "-":
        sys.stdout.write(text)
        return
    path = Path(output)
    if not path.parent.exists():
        raise UsageError(f"dtg: error: the folder of {output} does not exist")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    print(f"wrote {output}", file=sys.stderr)


#: The commands that read a .dtg file, and so may need the user's Python rewards.
PLUGIN_COMMANDS = ("check", "compile", "render", "train", "sample", "eval")


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

    compile_ = commands.add_parser("compile", help="dump a stage of the pipeline (ast, ir, pyro)")
    compile_.add_argument("file", metavar="FILE")
    compile_.add_argument("--emit", choices=EMIT_STAGES, default="ir", help="the stage to dump")
    compile_.add_argument("--model", help="the model to dump (default: the last in the file)")
    compile_.add_argument("-o", "--output", metavar="OUT", help="write here instead of stdout")
    compile_.set_defaults(run=cmd_compile)

    for register in _EXTRA_COMMANDS:
        register(commands)
    for name in PLUGIN_COMMANDS:
        if name in commands.choices:
            commands.choices[name].add_argument(
                "--plugin",
                action="append",
                metavar="FILE.py",
                help="import this Python file first (it registers rewards with "
                "dtg.register_reward); may be repeated",
            )
    return parser


def _register_render(commands: argparse._SubParsersAction) -> None:
    from .render.cli import register

    register(commands)


def _register_tools(commands: argparse._SubParsersAction) -> None:
    from .tools_cli import register

    register(commands)


def _register_runtime(commands: argparse._SubParsersAction) -> None:
    from .runtime.cli import register

    register(commands)


# Stages with their own CLI modules add their subcommands here.
_EXTRA_COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    _register_render,
    _register_tools,
    _register_runtime,
]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        for plugin in getattr(args, "plugin", None) or []:
            from .plugins import PluginError, load_plugin

            try:
                load_plugin(plugin)
            except PluginError as error:
                raise UsageError(f"dtg: error: {error}") from None
        return int(args.run(args))
    except UsageError as error:
        print(str(error), file=sys.stderr)
        return EXIT_USAGE
    except DtgError as error:
        print(error.format(), file=sys.stderr)
        return EXIT_USER
    except KeyboardInterrupt as interrupt:
        checkpoint = getattr(interrupt, "checkpoint", None)
        if checkpoint is not None:
            print(
                f"dtg: interrupted after step {interrupt.step}; checkpoint saved: {checkpoint}"
                " (continue with --resume)",
                file=sys.stderr,
            )
        else:
            print("dtg: interrupted", file=sys.stderr)
        return 130
    except Exception:
        if os.environ.get("DTG_DEBUG"):
            raise
        import traceback

        print("dtg: internal error (this is a bug in dtg, please report it):", file=sys.stderr)
        traceback.print_exc()
        return 3

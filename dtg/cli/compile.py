"""``dtg compile FILE --emit ast|ir|pyro [--model NAME] [-o OUT]``: dump one stage of the pipeline.

``ast`` is the syntax tree, ``ir`` the checked models (every model of the file without
``--model``), ``pyro`` a standalone Pyro program for one model.
"""

from __future__ import annotations

import argparse

from ..ir.dump import dump_ir
from ..program import loads
from ..syntax.dump import dump_ast
from .errors import EXIT_OK
from .files import pick_model, read_source, write_output

__all__ = ["register", "cmd_compile", "EMIT_STAGES"]

#: The stages ``--emit`` can dump.
EMIT_STAGES = ("ast", "ir", "pyro")


def cmd_compile(args: argparse.Namespace) -> int:
    """Dump the stage ``--emit`` names to ``-o OUT`` or standard output.

    :param args: ``file``, ``emit``, ``model``, ``output``.
    :returns: 0.
    :raises UsageError: for a missing file, an unknown ``--model`` or a missing output folder.
    """
    program = loads(read_source(args.file), file=args.file)
    if args.emit == "ast":
        text = dump_ast(program.module)
    elif args.emit == "ir":
        models = [pick_model(program, args.model, args.file)] if args.model else program.models
        text = "\n\n".join(dump_ir(m) for m in models)
    else:
        from ..backends.pyro_source import emit_pyro  # heavy: imports sympy and torch (nets)

        text = emit_pyro(pick_model(program, args.model, args.file))
    write_output(text + "\n", args.output)
    return EXIT_OK


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``compile`` to the ``dtg`` subcommands.

    :param commands: the subparsers of the main parser.
    """
    compile_ = commands.add_parser("compile", help="dump a stage of the pipeline (ast, ir, pyro)")
    compile_.add_argument("file", metavar="FILE")
    compile_.add_argument("--emit", choices=EMIT_STAGES, default="ir", help="the stage to dump")
    compile_.add_argument("--model", help="the model to dump (default: the last in the file)")
    compile_.add_argument("-o", "--output", metavar="OUT", help="write here instead of stdout")
    compile_.set_defaults(run=cmd_compile)

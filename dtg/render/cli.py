"""``dtg render``: the command-line front of the renderer.

``dtg render FILE [-o OUT] [--view compact|unrolled|zoom] [--labels letters|indexed]
[--model NAME] [--equations]`` writes the diagram (default ``<stem>.svg`` in the current folder)
and prints ``wrote OUT``. The main CLI adds the subcommand with :func:`register`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..ir import ModelIR
from .names import LABEL_STYLES
from .output import FORMATS, render
from .scene import VIEWS
from .zoom import zoom_problem

__all__ = ["register", "cmd_render"]


def _usage(message: str) -> Exception:
    """A ``dtg.cli.UsageError`` (exit 2), imported late: ``dtg.cli`` imports this module."""
    from ..cli import UsageError

    return UsageError(f"dtg: error: {message}")


def _pick(file: str, name: str | None) -> ModelIR:
    """Load the file and pick the model (the last one without ``--model``)."""
    import dtg

    path = Path(file)
    if not path.is_file():
        what = "a directory, not a .dtg file" if path.is_dir() else "no such file"
        raise _usage(f"{what}: {file}")
    program = dtg.load(path)  # a DtgError propagates: the main CLI prints it, exit 1
    if name is None:
        return program.model()
    for model in program.models:
        if model.name == name:
            return model
    names = ", ".join(m.name for m in program.models)
    raise _usage(f"no model '{name}' in {file} (models: {names})")


def _output(args: argparse.Namespace) -> Path:
    out = Path(args.output) if args.output else Path(Path(args.file).stem + ".svg")
    suffix = out.suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        formats = ", ".join("." + f for f in FORMATS)
        raise _usage(f"cannot write '{out}': the diagram formats are {formats}")
    if not out.parent.exists():
        raise _usage(f"the folder of {out} does not exist")
    if suffix == "tex" and args.view == "zoom":
        raise _usage("the zoomed-in view has no .tex export; use .svg, .png, .pdf or .dot")
    return out


def cmd_render(args: argparse.Namespace) -> int:
    """Handle ``dtg render``.

    :param args: the parsed arguments (``file``, ``output``, ``view``, ``labels``, ``model``,
        ``equations``).
    :returns: the exit status (0).
    :raises UsageError: for a missing file, an unknown ``--model``, an unsupported suffix, or a
        zoom on a space that is not tiny.
    """
    out = _output(args)
    ir = _pick(args.file, args.model)
    if args.view == "zoom":
        problem = zoom_problem(ir)
        if problem:
            raise _usage(f"{problem}; use --view compact or unrolled")
    render(ir, out, view=args.view, labels=args.labels, equations=args.equations)
    print(f"wrote {out}")
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    """Add the ``render`` subcommand to the ``dtg`` parser.

    :param commands: the subparsers object of the main parser.
    """
    parser = commands.add_parser(
        "render",
        help="draw a model as a generative commutative diagram",
        description="Draw a model as a diagram; the suffix of OUT picks the format "
        "(.svg .png .pdf need Graphviz; .dot and .tex do not).",
    )
    parser.add_argument("file", metavar="FILE")
    parser.add_argument(
        "-o",
        "--output",
        metavar="OUT",
        help="the output file (default: <stem>.svg in the current folder)",
    )
    parser.add_argument(
        "--view",
        choices=VIEWS,
        default="compact",
        help="compact (one template step), unrolled, or zoom (tiny spaces)",
    )
    parser.add_argument(
        "--labels",
        choices=LABEL_STYLES,
        default="letters",
        help="letters (A, B, …) or indexed (x₀, x₁, …, x_T)",
    )
    parser.add_argument("--model", help="the model to draw (default: the last in the file)")
    parser.add_argument(
        "--equations", action="store_true", help="add each channel's equation under the diagram"
    )
    parser.set_defaults(run=cmd_render)

"""``dtg render``: the command-line front of the renderer.

``dtg render FILE [-o OUT] [--view compact|unrolled|zoom|schedule] [--labels letters|indexed]
[--model NAME] [--equations]`` writes the diagram (default ``<stem>.svg`` in the current folder)
and prints ``wrote OUT``; ``--view schedule`` draws a token model's hyperschedule as a heat map
(:mod:`dtg.render.heatmap`). The render stage (:mod:`dtg.render`) imports graphviz, so it is
imported when the command runs, not when the parser is built.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from types import ModuleType

from ..ir import ModelIR
from ..program import load
from .errors import usage
from .files import pick_model
from .parser import LazyChoices

__all__ = ["register", "cmd_render"]


def _stage() -> ModuleType:
    """The render stage :mod:`dtg.render`."""
    from .. import render  # heavy: imports graphviz

    return render


def _pick(file: str, name: str | None) -> ModelIR:
    """Load the file and pick the model (the last one without ``--model``)."""
    path = Path(file)
    if not path.is_file():
        what = "a directory, not a .dtg file" if path.is_dir() else "no such file"
        raise usage(f"{what}: {file}")
    program = load(path)  # a DtgError propagates: the main CLI prints it, exit 1
    return pick_model(program, name, file)


def _output(args: argparse.Namespace, formats: tuple[str, ...]) -> Path:
    """The file to write, checked before the (slow) loading of ``FILE``."""
    out = Path(args.output) if args.output else Path(Path(args.file).stem + ".svg")
    suffix = out.suffix.lower().lstrip(".")
    if suffix not in formats:
        names = ", ".join("." + f for f in formats)
        raise usage(f"cannot write '{out}': the diagram formats are {names}")
    if not out.parent.exists():
        raise usage(f"the folder of {out} does not exist")
    if out.is_dir():
        raise usage(f"{out} is a directory")
    if suffix == "tex" and args.view == "zoom":
        raise usage("the zoomed-in view has no .tex export; use .svg, .png, .pdf or .dot")
    return out


def cmd_render(args: argparse.Namespace) -> int:
    """Handle ``dtg render``.

    :param args: the parsed arguments (``file``, ``output``, ``view``, ``labels``, ``model``,
        ``equations``).
    :returns: the exit status (0).
    :raises UsageError: for a missing file, an unknown ``--model``, an unsupported suffix, an
        output that is a folder, or a zoom on a space that is not tiny.
    :raises DtgOutputError: when the output cannot be written (:mod:`dtg.atomic`).
    """
    stage = _stage()
    if args.view == "schedule":  # a heat map of the hyperschedule (matplotlib), not a diagram
        out = _output(args, stage.SCHEDULE_FORMATS)
        ir = _pick(args.file, args.model)
        problem = stage.schedule_problem(ir)
        if problem:
            raise usage(problem)
        stage.draw_schedule(ir, out)
        print(f"wrote {out}")
        return 0
    out = _output(args, stage.FORMATS)
    ir = _pick(args.file, args.model)
    if args.view == "zoom":
        problem = stage.zoom_problem(ir)
        if problem:
            raise usage(f"{problem}; use --view compact or unrolled")
    stage.render(ir, out, view=args.view, labels=args.labels, equations=args.equations)
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
    view = parser.add_argument(
        "--view",
        default="compact",
        help="compact (one template step; per-level chains level by level), unrolled, zoom "
        "(tiny spaces), or schedule (a heat map of a token model's per-position schedule)",
    )
    labels = parser.add_argument(
        "--labels",
        default="letters",
        help="letters (A, B, …) or indexed (x₀, x₁, …, x_T)",
    )
    # Set after add_argument, which formats the usage of the new flag (iterating its choices).
    view.choices = LazyChoices(lambda: (*_stage().VIEWS, "schedule"))
    labels.choices = LazyChoices(lambda: _stage().LABEL_STYLES)
    parser.add_argument("--model", help="the model to draw (default: the last in the file)")
    parser.add_argument(
        "--equations", action="store_true", help="add each channel's equation under the diagram"
    )
    parser.set_defaults(run=cmd_render)

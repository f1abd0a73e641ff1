"""Writing diagrams to files: the format follows the suffix (``.svg .png .pdf .dot .tex``).

Images go through Graphviz (``dot``; ``neato`` for the zoomed-in view). Without Graphviz the
``.dot`` and ``.tex`` exports still work, and an image format raises a :class:`~dtg.errors.DtgError`
that says how to install it.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import graphviz

from ..atomic import write_atomic
from ..errors import DtgError
from ..ir import ModelIR
from .dot import to_digraph
from .equations import equations as channel_equations
from .scene import as_model, build
from .tikz import to_tikz

__all__ = ["render", "svg", "pipe", "IMAGE_FORMATS", "FORMATS", "graphviz_missing"]

IMAGE_FORMATS = ("svg", "png", "pdf")
FORMATS = (*IMAGE_FORMATS, "dot", "tex")
PNG_DPI = "144"


def graphviz_missing(program: str = "dot", fmt: str = "svg") -> DtgError:
    """The error raised when Graphviz is needed but not installed.

    :param program: the Graphviz program looked for (``dot`` or ``neato``).
    :param fmt: the image format asked for.
    :returns: a :class:`DtgError` naming how to install Graphviz and what works without it.
    """
    return DtgError(
        f"cannot draw .{fmt}: Graphviz's '{program}' program is not installed; install Graphviz "
        "with 'apt-get install graphviz' (Debian/Ubuntu), 'brew install graphviz' (macOS) or "
        "'conda install graphviz'; the .dot and .tex outputs work without it",
        hints=[
            "apt-get install graphviz  |  brew install graphviz",
            "without Graphviz: dtg render FILE -o OUT.dot (or OUT.tex)",
        ],
    )


def _with_equations(g: graphviz.Digraph, ir: ModelIR, note: str = "") -> graphviz.Digraph:
    """The digraph with the diagram's note and the channels' equations (a text table) as its
    bottom label, every line to the left."""
    g = g.copy()
    table = channel_equations(ir, "text").replace("\\", "\\\\").replace('"', "'")
    lines = [*note.splitlines(), ""] if note else []
    text = "\\l".join([*lines, *table.splitlines()]) + "\\l"
    g.attr(label=text, labelloc="b", labeljust="l", fontname="Courier", fontsize="10")
    return g


def pipe(g: graphviz.Digraph, fmt: str) -> bytes:
    """Run Graphviz on a digraph.

    :param g: the digraph (its ``engine`` picks the program).
    :param fmt: ``"svg"``, ``"png"`` or ``"pdf"``.
    :returns: the image bytes.
    :raises DtgError: when Graphviz is not installed.
    """
    program = g.engine or "dot"
    if shutil.which(program) is None:
        raise graphviz_missing(program, fmt)
    if fmt == "png":
        g = g.copy()
        g.attr(dpi=PNG_DPI)
    try:
        return g.pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        raise graphviz_missing(program, fmt) from None


def svg(ir: Any, view: str = "compact", labels: str = "letters") -> str:
    """The diagram as SVG text (for Jupyter's ``_repr_svg_``).

    :param ir: the model (or a Program: its last model).
    :param view: ``"compact"``, ``"unrolled"`` or ``"zoom"``.
    :param labels: ``"letters"`` or ``"indexed"``.
    :returns: the SVG document.
    :raises DtgError: when Graphviz is not installed.
    """
    return pipe(to_digraph(as_model(ir), view, labels), "svg").decode("utf-8")


def render(
    ir: Any,
    path: str | Path,
    view: str = "compact",
    labels: str = "letters",
    equations: bool = False,
) -> Path:
    """Write the diagram of a model to a file; the suffix picks the format.

    :param ir: the model (or a Program: its last model).
    :param path: the output file: ``.svg``, ``.png``, ``.pdf`` (Graphviz), ``.dot`` (DOT
        source) or ``.tex`` (a standalone tikz-cd document).
    :param view: ``"compact"``, ``"unrolled"`` or ``"zoom"`` (tiny discrete spaces; not ``.tex``).
    :param labels: ``"letters"`` (A, B, …) or ``"indexed"`` (x₀, x₁, …, x_T).
    :param equations: add each channel's equation (a table on images, ``align*`` in ``.tex``).
    :returns: the path written.
    :raises ValueError: for an unknown suffix, view or labels, or a zoom the model cannot have.
    :raises DtgError: for an image format when Graphviz is not installed.
    :raises DtgOutputError: when ``path`` is a link, a folder, a device, a pipe or a socket, or
        cannot be written (a missing or read-only folder, a full disk); the old file stays.
    """
    model, path = as_model(ir), Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ValueError(
            f"cannot write '{path.suffix or path.name}': the diagram formats are "
            + ", ".join("." + f for f in FORMATS)
        )
    if fmt == "tex":
        write_atomic(path, to_tikz(model, view, labels, equations=equations))
        return path
    g = to_digraph(model, view, labels)
    if equations:
        note = build(model, view, labels).note if view != "zoom" else ""
        g = _with_equations(g, model, note)
    if fmt == "dot":
        write_atomic(path, g.source)
    else:
        write_atomic(path, pipe(g, fmt))
    return path

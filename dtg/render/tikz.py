"""tikz-cd back end: the diagram as a standalone LaTeX document (the export for papers).

The grid of the :class:`~dtg.render.scene.Diagram` becomes a ``tikzcd`` matrix (rows data, model,
parent; columns the levels). Each channel is one ``\\arrow``: ``harpoon`` for stochastic channels,
plain ``->`` for deterministic maps, thick when learned, grey and dashed when frozen; the goal is a
``squiggly`` undirected arrow labelled ``\\sim``; the reward feeding a step (``grad(logr, x[t])``)
is a dashed arrow from the factor to the step's start, labelled ``\\nabla \\log r`` (bent below
its row).
"""

from __future__ import annotations

from ..ir import ModelIR
from .equations import equations as channel_equations
from .scene import ROWS, Diagram, Edge, Node, as_model, build

__all__ = ["to_tikz", "diagram_to_tikz", "PREAMBLE", "GRAD_STYLE"]

PREAMBLE = r"""\documentclass[border=6pt{varwidth}]{{standalone}}
\usepackage{{amsmath}}
\usepackage{{tikz-cd}}
\usetikzlibrary{{decorations.pathmorphing}}
\tikzset{{
  dtg data/.style={{draw, circle, fill=black!12, inner sep=2pt}},
  dtg level/.style={{circle, inner sep=2pt}},
  dtg factor/.style={{draw, rectangle, fill=black!5, inner sep=3pt, font=\scriptsize}},
  dtg frozen/.style={{gray}},
  dtg learned/.style={{line width=1.1pt}},
}}
"""
#: The style of the reward's arrows into steps that use ``grad(logr, …)``, added to the
#: preamble's ``\tikzset`` only where the diagram has one.
GRAD_STYLE = "  dtg grad/.style={dashed},\n"


def _direction(src: Node, dst: Node) -> str:
    """tikz-cd's relative address of ``dst`` seen from ``src`` (``r``, ``ll``, ``d``…)."""
    dx, dy = dst.col - src.col, ROWS.index(dst.row) - ROWS.index(src.row)
    return ("r" * dx if dx > 0 else "l" * -dx) + ("d" * dy if dy > 0 else "u" * -dy)


def _arrow(edge: Edge, d: Diagram) -> str:
    src, dst = d.node(edge.src), d.node(edge.dst)
    opts = [_direction(src, dst)]
    if edge.kind in ("harpoon", "arrow"):
        opts.append("harpoon" if edge.kind == "harpoon" else "->")
        if edge.learned:
            opts.append("dtg learned")
        opts.append(f'"{{{edge.tex}}}"')  # braces: labels may hold commas and brackets
    elif edge.kind == "goal":
        opts += ["squiggly", "dash", f'"{{{edge.tex}}}"']
    elif edge.kind == "factor":
        opts.append("dash")
    elif edge.kind == "grad":  # below the row it runs along, clear of the levels it passes
        opts += ["dtg grad"] + (["bend right=22"] if src.row == dst.row else [])
        opts.append(f'"{{{edge.tex}}}"{{swap, near end}}')  # under the arrow, by its level
    else:  # ellipsis
        opts += ["dash", "dotted"]
    if edge.frozen:
        opts += ["dtg frozen", "dashed"]
    return rf"\arrow[{', '.join(opts)}]"


def _cell(node: Node) -> str:
    style = {"factor": "dtg factor", "caption": "font=\\scriptsize"}.get(node.kind, "dtg level")
    if node.filled:
        style = "dtg data"
    if node.frozen:
        style += ", dtg frozen"
    if node.kind == "ellipsis":
        return node.name.tex
    return f"|[{style}]| {node.name.tex}"


def diagram_to_tikz(d: Diagram) -> str:
    """The ``tikzcd`` environment of a :class:`Diagram` (no document around it).

    :param d: the diagram.
    :returns: LaTeX source, one ``\\arrow`` per drawn edge.
    """
    cols = sorted({n.col for n in d.nodes})
    rows = [r for r in ROWS if any(n.row == r for n in d.nodes)]
    grid: dict[tuple[str, int], Node] = {(n.row, n.col): n for n in d.nodes}
    out_edges: dict[str, list[Edge]] = {}
    for edge in d.edges:
        out_edges.setdefault(edge.src, []).append(edge)
    longest = max((len(e.label) for e in d.edges), default=0)  # arrows as long as their labels
    sep = f"column sep={max(3.0, 0.4 * longest + 1.5):.1f}em, row sep=3.2em"
    lines = [rf"% {d.title} ({d.view})", rf"\begin{{tikzcd}}[{sep}]"]
    for row in rows:
        cells = []
        for col in cols:
            node = grid.get((row, col))
            if node is None:
                cells.append("")
                continue
            arrows = " ".join(_arrow(e, d) for e in out_edges.get(node.id, []))
            cells.append(f"{_cell(node)} {arrows}".rstrip())
        lines.append("  " + " & ".join(cells) + r" \\")
    lines[-1] = lines[-1].removesuffix(r" \\")
    lines.append(r"\end{tikzcd}")
    return "\n".join(lines)


def to_tikz(
    ir: ModelIR, view: str = "compact", labels: str = "letters", equations: bool = False
) -> str:
    """A standalone LaTeX document drawing the model with tikz-cd.

    :param ir: the checked model.
    :param view: ``"compact"`` or ``"unrolled"`` (the zoomed-in view has no tikz export).
    :param labels: ``"letters"`` or ``"indexed"``.
    :param equations: add each channel's equation below the diagram.
    :returns: the ``.tex`` source (compile with ``pdflatex``).
    :raises ValueError: for the zoom view or an unknown view.
    """
    ir = as_model(ir)
    if view == "zoom":
        raise ValueError("the zoomed-in view has no tikz-cd export; write .svg, .png, .pdf or .dot")
    d = build(ir, view, labels)
    body = [diagram_to_tikz(d)]
    if d.note_tex:
        body.append(rf"\par\smallskip {d.note_tex}")
    if equations:
        block = channel_equations(ir, "latex", env="aligned").split("\n", 1)[1]
        body.append(rf"\par\bigskip $\displaystyle {block}$")
    varwidth = ", varwidth=40cm" if equations or d.note_tex else ""
    preamble = PREAMBLE.format(varwidth=varwidth)
    if any(edge.kind == "grad" for edge in d.edges):
        preamble = preamble.removesuffix("}\n") + GRAD_STYLE + "}\n"
    return preamble + "\\begin{document}\n" + "\n".join(body) + "\n\\end{document}\n"

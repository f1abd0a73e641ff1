"""Graphviz back end: a :class:`~dtg.render.scene.Diagram` as a ``graphviz.Digraph``.

Layout: ``rankdir=LR`` puts the levels left to right; each column is a ``rank=same`` subgraph
whose nodes are ordered top to bottom (data, model, parent) by flat edges, so the destruction
chain sits above the generation chain. Harpoons are half arrowheads (``lnormal``), deterministic
maps full ones (``normal``); learned channels are bold; the goal is an undirected dashed ``~``; the
reward feeding a step (``grad(logr, x[t])``) a dashed ``vee`` arrow into the step's start, from
below, that does not move the layout (``constraint=false``).
A level node's tooltip gives its space when the model's levels differ in space; the note's lines
(the compact view's range of ``t``, a per-level model's spaces) are the graph's bottom label.
"""

from __future__ import annotations

import graphviz

from ..ir import ModelIR
from .scene import ROWS, Diagram, Edge, Node, as_model, build
from .zoom import zoom_digraph

__all__ = ["to_digraph", "to_dot", "diagram_to_digraph", "HARPOON", "ARROW"]

HARPOON = "lnormal"
ARROW = "normal"
FONT = "Times-Italic"
EDGE_FONT = "Helvetica"
DATA_FILL = "#d9d9d9"
FROZEN = "#8c8c8c"


def _node_attrs(node: Node) -> dict[str, str]:
    tooltip = node.tooltip or (f"{node.name.text} : {node.space}" if node.space else node.name.text)
    attrs = {"label": f"<{node.name.html}>", "tooltip": tooltip}
    if node.kind in ("level", "singleton"):
        attrs.update(shape="circle", margin="0.03", width="0.5")
        if node.kind == "singleton":
            attrs.update(fontname=EDGE_FONT, fontsize="18")
    elif node.kind == "ellipsis":
        attrs.update(shape="plaintext", fontsize="20", width="0.3")
    elif node.kind == "factor":
        attrs.update(
            shape="box",
            fontname=EDGE_FONT,
            fontsize="11",
            height="0.3",
            width="0.3",
            style="filled",
            fillcolor="#f2f2f2",
            margin="0.06,0.03",
        )
    else:  # caption
        attrs.update(shape="plaintext", fontname=EDGE_FONT, fontsize="10", fontcolor=FROZEN)
    if node.filled:
        attrs.update(style="filled", fillcolor=DATA_FILL)
    if node.frozen and node.kind != "caption":
        attrs.update(style="dashed", color=FROZEN, fontcolor=FROZEN)
    return attrs


def _edge_attrs(edge: Edge) -> dict[str, str]:
    attrs: dict[str, str] = {"fontname": EDGE_FONT, "fontsize": "11"}
    if edge.kind in ("harpoon", "arrow"):
        attrs.update(arrowhead=HARPOON if edge.kind == "harpoon" else ARROW, label=edge.label)
        attrs["tooltip"] = edge.tooltip or f"{edge.channel}: {edge.label}"
        if edge.learned:
            attrs.update(style="bold", penwidth="2")
    elif edge.kind == "goal":
        attrs.update(
            dir="none",
            style="dashed",
            xlabel=edge.label,
            fontsize="14",
            fontname="Times-Roman",
            tooltip="goal",
        )
    elif edge.kind == "factor":
        attrs.update(dir="none", tooltip="reward")
    elif edge.kind == "grad":  # beside the layout: the chains keep their places
        attrs.update(
            style="dashed",
            arrowhead="vee",
            arrowsize="0.6",
            label=edge.label,
            headport="s",
            constraint="false",
            tooltip=f"{edge.label}: the reward's gradient feeds the {edge.channel} step",
        )
    else:  # ellipsis
        attrs.update(style="dotted", arrowhead="none")
    if edge.frozen:
        attrs.update(color=FROZEN, fontcolor=FROZEN, style="dashed")
    return attrs


def diagram_to_digraph(d: Diagram) -> graphviz.Digraph:
    """Draw a :class:`Diagram` with Graphviz.

    :param d: the diagram.
    :returns: a ``graphviz.Digraph`` (``.source`` is the DOT text).
    """
    g = graphviz.Digraph(d.title, comment=f"dtg diagram: {d.title} ({d.view})")
    g.attr(
        rankdir="LR", nodesep="0.45", ranksep="0.75", newrank="true", pad="0.15", fontname=EDGE_FONT
    )
    g.attr("node", fontname=FONT, fontsize="16")
    g.attr("edge", arrowsize="0.9")
    cols = sorted({n.col for n in d.nodes})
    stacks: dict[int, list[str]] = {}  # each column's node ids, top to bottom
    for col in cols:
        column = sorted((n for n in d.nodes if n.col == col), key=lambda n: ROWS.index(n.row))
        with g.subgraph(name=f"col{col}") as sub:
            sub.attr(rank="same")
            stacks[col] = [n.id for n in column]
            if column[0].row != "data":  # an invisible anchor holds the column's place
                sub.node(f"anchor{col}", style="invis", shape="point", width="0.01")
                stacks[col].insert(0, f"anchor{col}")
            for node in column:
                sub.node(node.id, **_node_attrs(node))
    for edge in d.edges:
        g.edge(edge.src, edge.dst, **_edge_attrs(edge))
    for left, right in zip(cols, cols[1:], strict=False):  # left to right: the top of each column
        if "anchor" in stacks[left][0] + stacks[right][0]:
            g.edge(stacks[left][0], stacks[right][0], style="invis")
    joined = {frozenset((e.src, e.dst)) for e in d.edges if e.kind in ("goal", "factor")}
    for stack in stacks.values():  # top to bottom: data, model, parent
        for upper, lower in zip(stack, stack[1:], strict=False):
            if frozenset((upper, lower)) not in joined and not upper.startswith("anchor"):
                g.edge(upper, lower, style="invis")
    if d.note:
        g.attr(label=d.note.replace("\n", "\\n"), labelloc="b", labeljust="c", fontsize="12")
    return g


def to_digraph(ir: ModelIR, view: str = "compact", labels: str = "letters") -> graphviz.Digraph:
    """The diagram of a model as a ``graphviz.Digraph``.

    :param ir: the checked model.
    :param view: ``"compact"``, ``"unrolled"`` or ``"zoom"`` (tiny discrete spaces only).
    :param labels: ``"letters"`` (A, B, …) or ``"indexed"`` (x₀, x₁, …, x_T).
    :returns: the digraph.
    """
    ir = as_model(ir)
    if view == "zoom":
        return zoom_digraph(ir, labels=labels)
    return diagram_to_digraph(build(ir, view, labels))


def to_dot(ir: ModelIR, view: str = "compact", labels: str = "letters") -> str:
    """The DOT source of the diagram (see :func:`to_digraph`).

    :param ir: the checked model.
    :param view: ``"compact"``, ``"unrolled"`` or ``"zoom"``.
    :param labels: ``"letters"`` or ``"indexed"``.
    :returns: DOT text.
    """
    return to_digraph(ir, view, labels).source

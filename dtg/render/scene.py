"""The diagram of a model as plain data: nodes on a grid and typed edges (DESIGN.md §2).

Both back ends (Graphviz in :mod:`dtg.render.dot`, tikz-cd in :mod:`dtg.render.tikz`) draw the
same :class:`Diagram`, so the picture and the paper export always agree. Rows, top to bottom:
``data`` (the destruction chain), ``model`` (the generation chain, primed), ``parent`` (a frozen
copy of an ``extends`` parent's generation chain, drawn only when the objective fine-tunes toward
the parent, :data:`FINE_TUNING`). Columns follow the levels left to right; column ``-1`` holds the
reward factor and the parent's caption.

The goal of training is the undirected ``~`` edge: ``A′ ~ A`` (``~|B`` for a conditional
objective). A fine-tuning objective has no data goal: its target is the frozen prior tilted by the
reward, so the goal joins ``A′`` to the prior's ``A″`` and says the tilt (``~ ∝ exp(β·r)``);
``policy_gradient`` without ``kl`` maximises the reward and has no distribution to match, so no
goal is drawn. A step whose kernel uses the reward's gradient (``grad(logr, x[t])``) is fed by a
``grad`` edge from the reward factor to the level the step starts from (:mod:`dtg.render.grads`).

A model with kernels of single levels (``destroy x[1] ~ …``, a hierarchical VAE) has no one
template step: both views draw it level by level (:func:`dtg.render.levels.drawn_levels`), each
edge labelled with its own level's channel, and the compact view says so in its note; when the
levels differ in space, the note also gives each drawn level's space (``A : real[64]   B :
real[16]``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..ir import Channel, Family, ModelIR, ObjectiveKind
from .grads import grad_label
from .levels import COMPACT_NOTE, drawn_levels, node_name, space_note
from .names import Name, level_name, shown_levels

__all__ = [
    "Node",
    "Edge",
    "Diagram",
    "VIEWS",
    "ROWS",
    "CONDITIONAL",
    "FINE_TUNING",
    "build",
    "fine_tuned",
    "goal_edge",
    "channel_label",
    "reward_name",
    "tex_text",
    "as_model",
]

VIEWS = ("compact", "unrolled", "zoom")
ROWS = ("data", "model", "parent")
CONDITIONAL = (ObjectiveKind.DENOISING, ObjectiveKind.MASKING)
#: Objectives that train a child toward its frozen ``extends`` parent (the prior).
FINE_TUNING = (ObjectiveKind.RELATIVE_TRAJECTORY_BALANCE, ObjectiveKind.POLICY_GRADIENT)
_ELLIPSIS = Name("\u22ef", "\u22ef", r"\cdots")
_STAR = Name("*", "*", r"\ast")


@dataclass
class Node:
    """A node: a level of one chain, the singleton ``*``, an ellipsis, a reward factor or a caption.

    :param kind: ``"level" | "singleton" | "ellipsis" | "factor" | "caption"``.
    :param row: one of :data:`ROWS`.
    :param col: the column (levels left to right; ``-1`` for factor and caption).
    :param filled: the data node.
    :param frozen: part of a frozen parent.
    :param space: the level's space, given when the levels of the model differ in space.
    :param tooltip: the text shown on hover in SVG output (its level and space).
    """

    id: str
    name: Name
    kind: str
    row: str
    col: int
    filled: bool = False
    frozen: bool = False
    space: str = ""
    tooltip: str = ""


@dataclass
class Edge:
    """An edge. ``kind`` is ``"harpoon"`` (stochastic channel), ``"arrow"`` (deterministic map),
    ``"goal"`` (the undirected ``~``), ``"factor"`` (reward attachment), ``"grad"`` (the reward
    feeding the step out of ``dst``: its kernel uses ``grad(logr, …)``) or ``"ellipsis"``.

    :param channel: ``"destroy" | "generate" | "start"`` for channel edges and the role of the
        step a ``grad`` edge feeds, else ``None``.
    :param nets: the nets of a learned channel (drawn bold).
    :param tooltip: the text shown on hover in SVG output: the kernel as written and the
        signatures of its nets.
    """

    src: str
    dst: str
    kind: str
    label: str = ""
    tex: str = ""
    channel: str | None = None
    nets: tuple[str, ...] = ()
    frozen: bool = False
    tooltip: str = ""

    @property
    def learned(self) -> bool:
        return bool(self.nets)


@dataclass
class Diagram:
    """A whole diagram: nodes, edges and a note (the compact view's range of ``t``), the note
    also in LaTeX (``note_tex``)."""

    title: str
    view: str
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    note: str = ""
    note_tex: str = ""

    def node(self, id: str) -> Node:
        """The node with this id (:raises StopIteration: when there is none)."""
        return next(n for n in self.nodes if n.id == id)


def as_model(model: Any) -> ModelIR:
    """A :class:`ModelIR` from a model or a :class:`~dtg.Program` (its last model).

    :param model: a ``ModelIR`` or anything with a ``model()`` method returning one.
    :returns: the model.
    """
    if isinstance(model, ModelIR):
        return model
    if hasattr(model, "model") and callable(model.model):
        return model.model()
    raise TypeError(f"expected a dtg ModelIR or Program, got {type(model).__name__}")


def channel_label(channel: Channel) -> tuple[str, str]:
    """The edge label of a channel: its family, and its nets when learned (``Guess [eps]``);
    a keep per position (a hyperschedule) is shown by the subscript ``i`` (``Maskᵢ``).

    :param channel: the channel.
    :returns: (plain text, LaTeX).
    """
    label = channel.family.label
    tex = rf"\mathsf{{{label}}}"
    keep = channel.tables.get("keep")
    if keep is not None and keep.ndim > 1:  # a keep per token position (a hyperschedule)
        label, tex = f"{label}ᵢ", rf"{tex}_{{i}}"
    if channel.learned:
        label += f" [{', '.join(channel.nets)}]"
        nets = r",\,".join(rf"\mathrm{{{n}}}" for n in channel.nets).replace("_", r"\_")
        tex += rf"\,[{nets}]"
    return label, tex


def tex_text(text: str) -> str:
    """Plain text made safe for LaTeX (``\\texttt`` or ``\\text`` arguments).

    :param text: any text.
    :returns: the text with LaTeX's special characters escaped.
    """
    for char in "\\{}_#%&$^~":
        text = text.replace(char, rf"\char`\{char}" if char in "\\^~" else "\\" + char)
    return text


def reward_name(ir: ModelIR) -> Name:
    """The reward factor's label: ``logr = gmm25(x)`` (the reward's name and its target).

    :param ir: a model with a reward.
    :returns: the label.
    """
    reward = ir.reward
    assert reward is not None
    text = f"{reward.name} = {reward.text}"
    html = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return Name(text, html, rf"\texttt{{{tex_text(text)}}}")


def kernel_source(ir: ModelIR, channel: Channel) -> str:
    """The kernel as dtg source: ``x[t] ~ Normal(…)`` (what ``--equations text`` prints).

    :param ir: the model. :param channel: one of its channels.
    :returns: the text.
    """
    level = channel.target.replace("T", ir.steps_name)
    sign = "~" if channel.stochastic else "="
    return f"{ir.message.name}[{level}] {sign} {channel.text}"


def net_signature(ir: ModelIR, name: str) -> str:
    """A net as declared: ``eps : (real[2], time) -> real[2] = mlp``.

    :param ir: the model. :param name: one of its nets.
    :returns: the text (the name alone for a net the model does not declare).
    """
    spec = ir.nets.get(name)
    if spec is None:
        return name
    inputs = ", ".join(str(space) for space in spec.inputs)
    return f"{name} : ({inputs}) -> {spec.output} = {spec.arch}"


def _channel_edge(
    d: Diagram, ir: ModelIR, src: str, dst: str, channel: Channel, frozen: bool, role: str
) -> None:
    """Add one step's edge, and the reward's arrow into ``src`` when the step's kernel uses the
    reward's gradient (:mod:`dtg.render.grads`; none on a frozen parent's chain)."""
    label, tex = channel_label(channel)
    kind = "harpoon" if channel.stochastic else "arrow"
    tooltip = "; ".join(
        [
            f"{role}: {kernel_source(ir, channel)}",
            *map(lambda n: net_signature(ir, n), channel.nets),
        ]
    )
    d.edges.append(Edge(src, dst, kind, label, tex, role, channel.nets, frozen, tooltip))
    fed = None if frozen else grad_label(ir, channel)
    if fed is not None:
        d.edges.append(Edge("reward", src, "grad", fed[0], fed[1], role))


def _step(ir: ModelIR, row: str, level: int | str) -> Channel:
    """The channel of the step between ``level - 1`` and ``level`` on one row (a template level
    such as ``"t"`` gets the template)."""
    if isinstance(level, int):
        return ir.destroy_at(level) if row == "data" else ir.generate_at(level)
    return ir.destroy if row == "data" else ir.generate


def _chain(d: Diagram, ir: ModelIR, row: str, prime: int, levels: list, labels: str) -> None:
    """Add one row: its level nodes, ellipsis and channel edges (and the generation start)."""
    frozen = row == "parent"
    spaced = len(set(ir.message.level_spaces)) > 1
    ids: list[str] = []
    for col, level in enumerate(levels):
        id = f"{row[0]}{col}"
        if level is None:
            d.nodes.append(Node(id, _ELLIPSIS, "ellipsis", row, col, frozen=frozen))
        else:
            if isinstance(level, int):
                name = node_name(level, ir, labels, prime)
            else:
                name = level_name(level, ir.steps, ir.steps_name, labels, prime)
            filled = row == "data" and col == 0
            space = str(ir.message.space_at(level)) if spaced else ""
            shown = f"{ir.steps_name} = {ir.steps}" if level == ir.steps_name else level
            number = ir.steps if level == ir.steps_name else level
            known = isinstance(number, int) or not ir.message.level_spaces
            at = ir.message.space_at(number) if known else "the space of its level"
            tooltip = f"{name.text}: level {shown}, {at}"
            node = Node(id, name, "level", row, col, filled, frozen, space, tooltip)
            d.nodes.append(node)
        ids.append(id)
    for col in range(1, len(levels)):
        a, b = ids[col - 1], ids[col]
        if levels[col] is None or levels[col - 1] is None:
            src, dst = (a, b) if row == "data" else (b, a)
            d.edges.append(Edge(src, dst, "ellipsis", frozen=frozen))
        elif row == "data":
            _channel_edge(d, ir, a, b, _step(ir, row, levels[col]), frozen, "destroy")
        else:
            _channel_edge(d, ir, b, a, _step(ir, row, levels[col]), frozen, "generate")
    if row == "data":
        return
    last = d.node(ids[-1])
    if ir.start.family is Family.SINGLETON:
        last.kind, last.name = "singleton", _STAR
    else:
        star = Node(f"{row[0]}s", _STAR, "singleton", row, len(levels), frozen=frozen)
        d.nodes.append(star)
        _channel_edge(d, ir, star.id, last.id, ir.start, frozen, "start")


def build(ir: ModelIR, view: str = "compact", labels: str = "letters") -> Diagram:
    """The diagram of a model in the ``compact`` or ``unrolled`` view.

    :param ir: the checked model.
    :param view: ``"compact"`` (one template step, ``t = 1..T``) or ``"unrolled"``; a model with
        kernels for single levels is drawn level by level in both (the compact view says so in
        its note).
    :param labels: ``"letters"`` or ``"indexed"``.
    :returns: the :class:`Diagram`.
    """
    ir = as_model(ir)
    if view not in ("compact", "unrolled"):
        raise ValueError(f"unknown view {view!r}: expected 'compact' or 'unrolled'")
    if labels not in ("letters", "indexed"):
        raise ValueError(f"unknown labels {labels!r}: expected 'letters' or 'indexed'")
    d = Diagram(ir.name, view)
    if ir.per_level or (fine_tuned(ir) and ir.parent is not None and ir.parent.per_level):
        _levels_diagram(d, ir, labels)
        return d
    levels: list = ["t-1", "t"] if view == "compact" else shown_levels(ir.steps)
    model_levels = levels
    if view == "compact" and ir.steps > 1:
        # B = x[t] and Z = x[T]: levels lie between them only when T > 2.
        model_levels = levels + ([None, "T"] if ir.steps > 2 else ["T"])
    if view == "compact":
        T = ir.steps_name
        one_step = "A = x[t\u22121], B = x[t],  " if labels == "letters" else ""
        d.note = f"{one_step}t = 1..{T}   ({T} = {ir.steps})"
        one_tex = r"$A = x_{t-1}$, $B = x_{t}$, \quad " if labels == "letters" else ""
        d.note_tex = rf"{one_tex}$t = 1, \dots, {T}$ \quad (${T} = {ir.steps}$)"
    _chains(d, ir, levels, model_levels, labels)
    return d


def _levels_diagram(d: Diagram, ir: ModelIR, labels: str) -> None:
    """A model with kernels of single levels, drawn level by level in either view."""
    levels = drawn_levels(ir)
    notes = [(COMPACT_NOTE, COMPACT_NOTE)] if d.view == "compact" else []
    notes.append(space_note(ir, levels, labels))
    d.note = "\n".join(text for text, _ in notes if text)
    d.note_tex = r" \par ".join(tex for _, tex in notes if tex)
    _chains(d, ir, levels, levels, labels)


def _chains(d: Diagram, ir: ModelIR, levels: list, model_levels: list, labels: str) -> None:
    """Add the rows (data, model, and a fine-tuned parent), the goal and the reward."""
    _chain(d, ir, "data", 0, levels, labels)
    _chain(d, ir, "model", 1, model_levels, labels)
    if fine_tuned(ir):
        assert ir.parent is not None
        _chain(d, ir.parent, "parent", 2, model_levels, labels)
        text = f"{ir.parent.name} (frozen)"
        caption = Name(text, f"{ir.parent.name}<BR/>(frozen)", rf"\text{{{tex_text(text)}}}")
        d.nodes.append(Node("caption", caption, "caption", "parent", -1, frozen=True))
    given = level_name(levels[1], ir.steps, ir.steps_name, labels) if len(levels) > 1 else None
    goal = goal_edge(ir, given)
    if goal is not None:
        d.edges.append(goal)
    if ir.reward is not None:
        d.nodes.append(Node("reward", reward_name(ir), "factor", "model", -1))
        d.edges.append(Edge("reward", "m0", "factor"))


def fine_tuned(ir: ModelIR) -> bool:
    """Whether the model fine-tunes its ``extends`` parent (the parent is drawn, frozen).

    A child that only changes the objective (or anything else) and trains on its own is not.

    :param ir: the checked model.
    :returns: ``True`` for a child whose objective is in :data:`FINE_TUNING`.
    """
    return ir.parent is not None and ir.objective.kind in FINE_TUNING


def _number(value: float) -> str:
    return f"{value:g}"


def goal_edge(ir: ModelIR, given: Name | None) -> Edge | None:
    """The goal of training as an edge, or ``None`` when the objective matches no distribution.

    ``A′ ~ A`` (``~|B`` given ``B`` for a conditional objective); for fine-tuning, ``A′ ~ A″``
    tilted by the reward: ``∝ exp(β·r)`` for relative trajectory balance (the target
    p₀(x)·exp(β·r(x)), ``r`` the reward statement, a log-reward), ``∝ exp(r/kl)`` for
    ``policy_gradient`` with a KL penalty (the optimum of E[r] − kl·KL(p ‖ p₀)).

    :param ir: the checked model.
    :param given: the name of level ``t`` (the conditioning node), if drawn.
    :returns: the edge, or ``None`` (``policy_gradient`` without ``kl``).
    """
    if not fine_tuned(ir):
        if given is not None and ir.objective.kind in CONDITIONAL:
            return Edge("d0", "m0", "goal", f"~|{given.text}", rf"\sim|{given.tex}")
        return Edge("d0", "m0", "goal", "~", r"\sim")
    assert ir.reward is not None  # the checker requires a reward for fine-tuning
    name = ir.reward.name
    tex_name = rf"\mathrm{{{name}}}".replace("_", r"\_")
    options = ir.objective.options
    if ir.objective.kind is ObjectiveKind.RELATIVE_TRAJECTORY_BALANCE:
        beta = float(options.get("beta") or 1.0)
        factor = "" if beta == 1 else _number(beta) + "\u00b7"
        tilt, tilt_tex = f"{factor}{name}", (_number(beta) + r"\," if beta != 1 else "") + tex_name
    else:
        kl = float(options.get("kl") or 0.0)
        if kl <= 0:
            return None
        tilt, tilt_tex = f"{name}/{_number(kl)}", f"{tex_name}/{_number(kl)}"
    label = f"~ \u221d exp({tilt})"
    tex = rf"\sim\ \propto e^{{{tilt_tex}}}"
    return Edge("m0", "p0", "goal", label, tex)

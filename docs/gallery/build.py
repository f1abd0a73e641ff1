"""Build the diagram gallery: every example drawn compact and unrolled, next to its source.

Run from anywhere (needs Graphviz's ``dot``)::

    python docs/gallery/build.py

Writes ``docs/gallery/<example>_<view>.svg`` (and ``.png``; token models also
``<example>_schedule.png``, their schedule's heat map), the notation figures
``docs/gallery/notation/*.svg``, and ``docs/gallery.md``. ``docs/notation.md`` is written by hand
and shows the notation figures.
"""

from __future__ import annotations

from pathlib import Path

import dtg
from dtg.ir import ModelIR
from dtg.render import draw_schedule, render, schedule_problem, zoom_problem
from dtg.render.dot import diagram_to_digraph
from dtg.render.names import Name
from dtg.render.output import pipe
from dtg.render.scene import Diagram, Edge, Node

__all__ = ["build_gallery", "build_notation", "main"]

ROOT = Path(__file__).resolve().parents[2]
GALLERY = ROOT / "docs" / "gallery"
#: Sample plots of trained examples (``dtg sample FILE --checkpoint … --plot``), where present.
SAMPLES = GALLERY / "samples"
SAMPLE_NOTE = "each trained from the CLI at its file's budget"
EXTENDS = """
# Fine-tuning a trained model toward a reward with relative trajectory balance:
# the parent's generation chain is a frozen prior (drawn grey and dashed).
model ddpm_moons_rtb extends ddpm_moons {
  reward r(x) = sum(x)
  objective relative_trajectory_balance
}
"""


def _views(ir: ModelIR) -> list[str]:
    return ["compact", "unrolled"] + (["zoom"] if zoom_problem(ir) is None else [])


def _section(stem: str, source: str, ir: ModelIR) -> str:
    """One example: its source, then its diagrams below it, each at most the column's width (a
    table cell beside the source clipped them in the docs site's content column)."""
    images = []
    for view in _views(ir):
        for fmt in ("svg", "png"):
            render(ir, GALLERY / f"{stem}_{view}.{fmt}", view=view)
        images.append(
            f"**{view}**\n\n"
            f'<img src="gallery/{stem}_{view}.svg" alt="{stem} {view}" style="max-width: 100%">'
        )
    if schedule_problem(ir) is None:  # a token model: its (hyper)schedule as a heat map
        draw_schedule(ir, GALLERY / f"{stem}_schedule.png")
        images.append(
            f"**schedule** (`dtg render … --view schedule`)\n\n"
            f'<img src="gallery/{stem}_schedule.png" alt="{stem} schedule" width="420" '
            'style="max-width: 100%">'
        )
    if (SAMPLES / f"{stem}.png").is_file():
        images.append(
            f"**samples** (`dtg sample … --plot`, {SAMPLE_NOTE})\n\n"
            f'<img src="gallery/samples/{stem}.png" alt="{stem} samples" width="480" '
            'style="max-width: 100%">'
        )
    return "\n".join([f"## {stem}\n", f"```dtg\n{source.strip()}\n```\n", "\n\n".join(images), ""])


def build_gallery() -> str:
    """Render every example (and one ``extends`` model) and return ``docs/gallery.md``."""
    parts = [
        "# Gallery\n",
        "Every example of `examples/` drawn by `dtg render` as a generative commutative diagram "
        "(see [notation](notation.md)), below its source: the *compact* view (one template "
        "step, `t = 1..T`) and the *unrolled* view (A, B, C, ⋯, Y, Z); tiny discrete spaces also "
        "get the *zoomed-in* view; trained examples also show a plot of samples (left) beside "
        "held-out data (right). Rebuild with `python docs/gallery/build.py`.\n",
    ]
    for path in sorted((ROOT / "examples").glob("*.dtg")):
        source = path.read_text()
        for ir in dtg.load(path).models:
            parts.append(_section(path.stem, source, ir))
    parent = (ROOT / "examples" / "ddpm_moons.dtg").read_text()
    child = dtg.loads(parent + EXTENDS).model("ddpm_moons_rtb")
    parts.append(_section("ddpm_moons_rtb", "# ddpm_moons as above, then:\n" + EXTENDS, child))
    return "\n".join(parts)


def _level(id: str, text: str, row: str, col: int, **kw) -> Node:
    return Node(id, Name(text, text, text), kw.pop("kind", "level"), row, col, **kw)


def _notation_figures() -> dict[str, Diagram]:
    """Small diagrams, one per symbol, drawn with the renderer's own styles."""
    figs: dict[str, Diagram] = {}

    def fig(name: str, nodes: list[Node], edges: list[Edge]) -> None:
        figs[name] = Diagram(name, "notation", nodes, edges)

    a, b = _level("d0", "A", "data", 0, filled=True), _level("d1", "B", "data", 1)
    a1, b1 = _level("m0", "A′", "model", 0), _level("m1", "B′", "model", 1)
    fig("harpoon", [a, b], [Edge("d0", "d1", "harpoon", "Mask", channel="destroy")])
    fig("arrow", [a, b], [Edge("d0", "d1", "arrow", "MashLast", channel="destroy")])
    guess = Edge("m1", "m0", "harpoon", "Guess", channel="generate")
    fig("prime", [a1, b1], [guess])
    learned = Edge("m1", "m0", "harpoon", "Guess [eps]", channel="generate", nets=("eps",))
    fig("learned", [a1, b1], [learned])
    goal = Edge("d0", "m0", "goal", "~")
    fig("goal", [a, a1], [goal])
    cond = Edge("d0", "m0", "goal", "~|B")
    mask = Edge("d0", "d1", "harpoon", "Mask", channel="destroy")
    fig("conditional", [a, b, a1, b1], [mask, Edge("m1", "m0", "harpoon", "Guess"), cond])
    star = _level("ms", "*", "model", 1, kind="singleton")
    fig("singleton", [a1, star], [Edge("ms", "m0", "harpoon", "Normal", channel="start")])
    dots, c1 = _level("m1", "⋯", "model", 1, kind="ellipsis"), _level("m2", "Z′", "model", 2)
    fig("ellipsis", [a1, dots, c1], [Edge("m1", "m0", "ellipsis"), Edge("m2", "m1", "ellipsis")])
    factor = Node("reward", Name("logr = gmm25(x)", "logr = gmm25(x)", ""), "factor", "model", -1)
    fig("factor", [factor, a1], [Edge("reward", "m0", "factor")])
    langevin = Edge("m1", "m0", "harpoon", "Normal [drift]", channel="generate", nets=("drift",))
    feed = Edge("reward", "m1", "grad", "∇ logr", channel="generate")
    fig("grad", [factor, a1, b1], [Edge("reward", "m0", "factor"), langevin, feed])
    frozen = [
        _level("p0", "A″", "parent", 0, frozen=True),
        _level("p1", "B″", "parent", 1, frozen=True),
    ]
    fig("frozen", frozen, [Edge("p1", "p0", "harpoon", "Guess [eps]", nets=("eps",), frozen=True)])
    fig("tilted", [a1, frozen[0]], [Edge("m0", "p0", "goal", "~ ∝ exp(β·r)")])
    prod = _level("m0", "A × Z′", "model", 1)
    parts = [_level("d0", "A", "data", 2), _level("p0", "Z′", "parent", 2)]
    fig(
        "product",
        [prod, *parts],
        [Edge("m0", "d0", "arrow", "Project"), Edge("m0", "p0", "arrow", "Project")],
    )
    return figs


def build_notation() -> None:
    """Write ``docs/gallery/notation/<symbol>.svg`` (and the 3-state Shuffle zoom)."""
    out = GALLERY / "notation"
    out.mkdir(parents=True, exist_ok=True)
    for name, figure in _notation_figures().items():
        g = diagram_to_digraph(figure)
        (out / f"{name}.svg").write_bytes(pipe(g, "svg"))
    render(dtg.load(ROOT / "examples" / "shuffle3.dtg").model(), out / "zoom.svg", view="zoom")


def main() -> None:
    """Build the gallery and the notation figures."""
    GALLERY.mkdir(parents=True, exist_ok=True)
    (ROOT / "docs" / "gallery.md").write_text(build_gallery(), encoding="utf-8")
    build_notation()
    print(f"wrote {ROOT / 'docs' / 'gallery.md'} and {GALLERY}/")


if __name__ == "__main__":
    main()

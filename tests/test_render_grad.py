"""The renderer draws the reward feeding a step whose kernel uses ``grad(logr, x[t])``."""

from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ET

import pytest
from conftest import EXAMPLES, example_paths, parse_dot

import dtg
from dtg.ir.expr import RewardGrad, walk
from dtg.ir.printer import reward_latex as reward_tex
from dtg.render import build, to_dot, to_tikz
from dtg.render.output import svg

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed")
NABLA = "\u2207"

#: gmm25_lp with the gradient swapped for the level itself: the same diagram but the arrows.
NO_GRAD = ("scale(t) * grad(logr, x[t])", "scale(t) * x[t]")
#: grad in a destruction kernel (it reads x[t-1], so the gradient is taken there).
DESTROY_GRAD = """
model gd {
  space x : real[2]
  steps T = 3
  reward logr(x) = gmm25(x)
  net drift : (real[2], time) -> real[2] = mlp(hidden = [8])
  generate x[T]   ~ Normal(0, 1)
  generate x[t-1] ~ Normal(x[t] + drift(x[t], t) / T, 1)
  destroy  x[t]   ~ Normal(x[t-1] + grad(logr, x[t-1], clip = 5) / T, 1)
  objective trajectory_balance
}
"""
#: One level's own kernel uses the gradient: only the step x[2] ⇀ x[1] is fed.
PER_LEVEL = """
model gp {
  data x : real[2] ~ moons(noise = 0.05)
  steps T = 3
  reward logr(x) = gmm25(x)
  net drift : (real[2], time) -> real[2] = mlp(hidden = [8])
  generate x[T]   ~ Normal(0, 1)
  generate x[t-1] ~ Normal(x[t] + drift(x[t], t) / T, 1)
  generate x[1]   ~ Normal(x[2] + grad(logr, x[2]), 1)
  destroy  x[t]   ~ Normal(x[t-1], 1)
  objective elbo
}
"""
#: A fine-tuned child whose inherited kernel uses the gradient; the frozen parent is drawn too.
FINE_TUNED = """
model base {
  space x : real[2]
  steps T = 3
  reward logr(x) = -0.5 * sum(x^2)
  net f : (real[2], time) -> real[2] = mlp(hidden = [4])
  destroy x[t] ~ Normal(0.9 * x[t-1], 0.4)
  generate x[T] ~ Normal(0, 1)
  generate x[t-1] ~ Normal(f(x[t], t) + 0.1 * grad(logr, x[t]), 0.5)
  objective trajectory_balance
}
model child extends base {
  reward logr(x) = -sum(x^2)
  objective relative_trajectory_balance
}
"""


def ex(name: str):
    return dtg.load(EXAMPLES / f"{name}.dtg").model()


def feeding(edges) -> list[tuple[str, str, dict]]:
    """The reward's arrows into steps: out of the factor box, directed (not the factor line)."""
    return [e for e in edges if e[0] == "reward" and e[2].get("label", "").startswith(NABLA)]


def step_tails(edges, role: str) -> list[str]:
    """Where each drawn step of one role starts (its tooltip says the role)."""
    return [t for t, _, a in edges if a.get("tooltip", "").startswith(f"{role}:")]


def uses_grad(ir) -> bool:
    return any(
        isinstance(node, RewardGrad)
        for channel in ir.every_channel
        for expr in channel.args.values()
        for node in walk(expr)
    )


# ----------------------------------------------------------------------------- DOT


def test_gmm25_lp_compact_dot_has_the_feeding_edge_into_b_prime() -> None:
    nodes, edges = parse_dot(to_dot(ex("gmm25_lp"), "compact"))
    (edge,) = feeding(edges)
    tail, head, attrs = edge
    assert nodes[head]["label"] == "<B′>"  # x[t]: where grad(logr, x[t]) is taken
    assert step_tails(edges, "generate") == [head]  # … and where the generation step starts
    assert attrs["label"] == "∇ logr" and attrs["style"] == "dashed"
    assert attrs["arrowhead"] not in ("none", "") and attrs.get("dir") != "none"
    assert attrs["constraint"] == "false"  # the chains keep their layout
    assert "generate" in attrs["tooltip"]
    # The factor line to A′ is still there, undirected.
    assert [(t, h) for t, h, a in edges if a.get("tooltip") == "reward"] == [("reward", "m0")]


def test_gmm25_tb_has_no_feeding_edge() -> None:
    for view in ("compact", "unrolled"):
        source = to_dot(ex("gmm25_tb"), view)
        _, edges = parse_dot(source)
        assert not feeding(edges) and NABLA not in source
        assert [h for t, h, a in edges if t == "reward" and a.get("style") != "invis"] == ["m0"]


def test_unrolled_feeds_every_drawn_generation_step() -> None:
    nodes, edges = parse_dot(to_dot(ex("gmm25_lp"), "unrolled"))
    heads = sorted(h for _, h, _ in feeding(edges))
    # T = 100 draws levels 0, 1, 2, ⋯, 99, 100: the steps 1 ⇀ 0, 2 ⇀ 1 and 100 ⇀ 99 are drawn,
    # starting at B′, C′ and the singleton x′[100] = 0.
    assert [nodes[h]["label"] for h in heads] == ["<B′>", "<C′>", "<*>"]
    assert heads == sorted(step_tails(edges, "generate"))


def test_destroy_kernel_with_grad_is_fed_on_the_data_row() -> None:
    ir = dtg.loads(DESTROY_GRAD).model()
    for view, drawn in (("compact", 1), ("unrolled", 3)):
        _, edges = parse_dot(to_dot(ir, view))
        fed = feeding(edges)
        assert sorted(h for _, h, _ in fed) == sorted(step_tails(edges, "destroy"))
        assert len(fed) == drawn and all("destroy" in a["tooltip"] for _, _, a in fed)


def test_per_level_kernel_feeds_only_its_own_step() -> None:
    ir = dtg.loads(PER_LEVEL).model()
    for view in ("compact", "unrolled"):  # drawn level by level in both views
        nodes, edges = parse_dot(to_dot(ir, view))
        ((_, head, _),) = feeding(edges)
        assert head == "m2" and nodes[head]["label"] == "<C′>"  # x[2], where x[1]'s kernel starts


def test_fine_tuned_child_feeds_its_own_chain_not_the_frozen_parent() -> None:
    ir = dtg.loads(FINE_TUNED).model("child")
    nodes, edges = parse_dot(to_dot(ir, "unrolled"))
    heads = sorted(h for _, h, _ in feeding(edges))
    assert heads == ["m1", "m2", "m3"]  # T = 3, a Normal start: steps out of x′[1..3]
    assert any(n.startswith("p") for n in nodes)  # the parent is drawn, and not fed


def test_nothing_else_changes() -> None:
    """gmm25_lp and the same model without the gradient differ only by the reward's arrows."""
    text = (EXAMPLES / "gmm25_lp.dtg").read_text()
    assert NO_GRAD[0] in text
    plain = dtg.loads(text.replace(*NO_GRAD)).model()
    assert uses_grad(ex("gmm25_lp")) and not uses_grad(plain)
    for view in ("compact", "unrolled"):
        fed = to_dot(ex("gmm25_lp"), view).splitlines()
        kept = [
            line for line in fed if not line.lstrip().startswith("reward -> m") or "∇" not in line
        ]
        assert len(fed) - len(kept) == (1 if view == "compact" else 3)

        def untipped(lines: list[str]) -> list[str]:  # hover texts quote the kernels
            return [re.sub(r' tooltip="[^"]*"', "", line) for line in lines]

        assert untipped(kept) == untipped(to_dot(plain, view).splitlines())
        tex = to_tikz(ex("gmm25_lp"), view, equations=False)
        stripped = re.sub(r" \\arrow\[[^\]\n]*dtg grad[^\]\n]*\]", "", tex)
        stripped = stripped.replace("  dtg grad/.style={dashed},\n", "")
        assert stripped == to_tikz(plain, view, equations=False)


@pytest.mark.parametrize("path", example_paths(), ids=lambda p: p.stem)
def test_only_models_with_grad_have_the_arrow(path) -> None:
    ir = dtg.load(path).model()
    d = build(ir, "unrolled")
    grads = [e for e in d.edges if e.kind == "grad"]
    assert bool(grads) == uses_grad(ir)
    assert ("dtg grad" in to_tikz(ir, "unrolled")) == uses_grad(ir)
    assert all(e.src == "reward" and e.label == f"{NABLA} {ir.reward.name}" for e in grads)


# ----------------------------------------------------------------------------- tikz-cd


def _body(tex: str) -> str:
    return tex[tex.index(r"\begin{tikzcd}") : tex.index(r"\end{tikzcd}")]


def test_tex_has_the_feeding_arrow_from_the_factor_cell() -> None:
    tex = to_tikz(ex("gmm25_lp"), "compact")
    body = _body(tex)
    arrows = re.findall(r"\\arrow\[([^\n]*?dtg grad[^\n]*?)\](?= |$)", body, re.M)
    assert len(arrows) == 1
    (arrow,) = arrows
    # From the factor (column -1) to B′ (column 1) on the same row: two columns right, bent
    # below the row so that it clears A′, labelled with the gradient of log r.
    assert arrow.startswith("rr,") and "bend right" in arrow and r"\nabla \log r" in arrow
    reward_cell = next(line for line in body.splitlines() if r"\texttt{logr = gmm25(x)}" in line)
    cell = reward_cell.split(" & ")[0]
    assert "dtg grad" in cell
    assert "dtg grad/.style={dashed}" in tex[: tex.index(r"\begin{document}")]


def test_tex_unrolled_and_gmm25_tb() -> None:
    body = _body(to_tikz(ex("gmm25_lp"), "unrolled"))
    directions = sorted(re.findall(r"\\arrow\[(r+), dtg grad", body))
    # Columns: factor −1, then A′ B′ C′ ⋯ Y′ * at 0..5: B′, C′ and * are 2, 3 and 6 to the right.
    assert directions == ["rr", "rrr", "rrrrrr"]
    tb = to_tikz(ex("gmm25_tb"), "unrolled", equations=True)
    assert "dtg grad" not in tb and r"\nabla" not in tb


def test_tex_destroy_grad_goes_up_to_the_data_row_without_bending() -> None:
    body = _body(to_tikz(dtg.loads(DESTROY_GRAD).model(), "compact"))
    (arrow,) = re.findall(r"\\arrow\[([^\n]*?dtg grad[^\n]*?)\](?= |$)", body, re.M)
    assert arrow.startswith("ru,") and "bend" not in arrow  # from (model, −1) to A at (data, 0)


def test_reward_tex() -> None:
    assert reward_tex("logr") == r"\log r" and reward_tex("log_r") == r"\log r"
    assert reward_tex("loglik") == r"\log \mathrm{lik}" and reward_tex("r") == "r"
    assert reward_tex("energy") == r"\mathrm{energy}" and reward_tex("my_r") == r"\mathrm{my\_r}"
    assert reward_tex("log") == r"\mathrm{log}"


# ----------------------------------------------------------------------------- images


@needs_dot
def test_svg_arrow_ends_at_b_prime_from_below() -> None:
    root = ET.fromstring(svg(ex("gmm25_lp"), "compact"))
    ns = "{http://www.w3.org/2000/svg}"
    centres, tips = {}, []
    for group in root.iter(f"{ns}g"):
        title = group.find(f"{ns}title")
        shape = next(group.iter(f"{ns}ellipse"), None)
        if group.get("class") == "node" and shape is not None:
            centres[title.text] = (float(shape.get("cx")), float(shape.get("cy")), shape.get("rx"))
        if group.get("class") == "edge" and title.text.startswith("reward->m1"):
            texts = [t.text for t in group.iter(f"{ns}text")]
            assert texts == ["∇ logr"]
            points = next(group.iter(f"{ns}polygon")).get("points").split()
            tips = [tuple(map(float, p.split(","))) for p in points]
    assert tips, "no arrow from the reward to B′"
    cx, cy, rx = centres["m1"]
    tip = min(tips, key=lambda p: (p[0] - cx) ** 2 + (p[1] - cy) ** 2)
    distance = ((tip[0] - cx) ** 2 + (tip[1] - cy) ** 2) ** 0.5
    assert distance <= float(rx) + 2  # the arrowhead touches B′
    assert tip[1] > cy  # from below (SVG's y grows downward)

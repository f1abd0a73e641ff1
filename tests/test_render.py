"""The renderer: structure of the diagrams (DOT, SVG, tikz-cd), not pixels."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from fractions import Fraction
from pathlib import Path

import graphviz
import pytest
from conftest import EXAMPLES, example_paths, parse_dot

import dtg
import dtg.cli
from dtg.ir import Family, ObjectiveKind
from dtg.render import (
    build,
    equations,
    render,
    svg,
    to_digraph,
    to_dot,
    to_tikz,
    zoom_problem,
    zoom_steps,
)
from dtg.render import output as render_output
from dtg.render.names import letter, shown_levels
from dtg.render.scene import fine_tuned

HAS_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAS_DOT, reason="Graphviz 'dot' is not installed")
CHILD = """
model child extends ddpm_moons {
  reward r(x) = sum(x)
  objective relative_trajectory_balance
}
"""
MASK3 = """
model mask3 {
  data x : token(3)[1] ~ categorical(probs = [0.6, 0.3, 0.1])
  steps T = 2
  net logits : (token(3)[1], time) -> real[1, 3] = mlp(hidden = [16])
  destroy  x[t]   ~ Mask(x[t-1], keep = (1 - t/T) / (1 - (t-1)/T))
  generate x[T]   = masked
  generate x[t-1] ~ Guess(x[t], logits)
  objective masking
}
"""

# ----------------------------------------------------------------------------- DOT parsing


def visible(edges):
    return [e for e in edges if e[2].get("style") != "invis"]


def model(path: Path | str):
    return dtg.load(path).model()


def ex(name: str):
    return model(EXAMPLES / f"{name}.dtg")


def child():
    return dtg.loads((EXAMPLES / "ddpm_moons.dtg").read_text() + CHILD).model("child")


def test_child_extends_loads() -> None:
    ir = child()
    assert ir.parent is not None and ir.parent.name == "ddpm_moons" and ir.reward is not None


# ----------------------------------------------------------------------------- the diagrams


@pytest.mark.parametrize("view", ["compact", "unrolled"])
@pytest.mark.parametrize("path", example_paths(), ids=lambda p: p.stem)
def test_dot_structure(path: Path, view: str) -> None:
    ir = model(path)
    nodes, edges = parse_dot(to_dot(ir, view=view))
    edges = visible(edges)
    assert "filled" in nodes["d0"]["style"] and nodes["m0"]["label"] == "<A′>"
    by_role = {}
    for tail, head, attrs in edges:
        role = attrs.get("tooltip", "").split(":")[0]
        if tail.startswith("p") or head.startswith("p"):
            continue  # the frozen parent chain of extends models: tested separately
        by_role.setdefault(role, []).append((tail, head, attrs))
    for role, template in (("destroy", ir.destroy), ("generate", ir.generate)):
        assert by_role[role], role
        for tail, head, attrs in by_role[role]:
            # Per-level kernels (T <= 5 here: every level drawn, column = level): the edge
            # into level l carries destroy_at(l), the edge out of level l generate_at(l).
            level = int(head[1:]) if role == "destroy" else int(tail[1:])
            at = ir.destroy_at if role == "destroy" else ir.generate_at
            channel = at(level) if ir.per_level else template
            step = int(head[1:]) - int(tail[1:])
            assert step == (1 if role == "destroy" else -1)  # t-1 -> t, then t -> t-1
            assert tail[0] == head[0] == ("d" if role == "destroy" else "m")
            assert attrs["arrowhead"] == ("lnormal" if channel.stochastic else "normal")
            assert attrs["label"].startswith(channel.family.label)
            assert ("bold" in attrs.get("style", "")) == channel.learned
            for net in channel.nets:
                assert net in attrs["label"]
    goals = [e for e in edges if e[2].get("tooltip") == "goal"]
    if fine_tuned(ir):  # the goal is the tilted prior, not the data (tested below)
        assert all(g[:2] == ("m0", "p0") for g in goals) and len(goals) <= 1
    else:
        (goal,) = goals
        assert goal[:2] == ("d0", "m0") and goal[2]["dir"] == "none"
        assert goal[2]["style"] == "dashed"
        conditional = ir.objective.kind in (ObjectiveKind.DENOISING, ObjectiveKind.MASKING)
        assert goal[2]["xlabel"] == ("~|B" if conditional else "~")
    stars = [n for n, a in nodes.items() if a.get("label") == "<*>" and not n.startswith("p")]
    assert len(stars) == 1
    if ir.start.family is Family.SINGLETON:
        assert "start" not in by_role and stars[0].startswith("m")
    else:
        ((tail, head, attrs),) = by_role["start"]
        assert tail == stars[0] and attrs["arrowhead"] == "lnormal"
        assert attrs["label"] == ir.start.family.label
    assert ("reward" in nodes) == (ir.reward is not None)
    if view == "compact":  # the range of t, or that a per-level chain has no one step
        note = "drawn level by level" if ir.per_level else "t = 1..T"
        assert note in to_dot(ir, view=view)


def test_learned_and_deterministic_styles() -> None:
    _, edges = parse_dot(to_dot(ex("ddpm_moons"), "unrolled"))
    guess = [e for e in edges if e[2].get("label") == "Guess [eps]"]
    assert len(guess) == 3 and all(e[2]["style"] == "bold" for e in guess)
    _, edges = parse_dot(to_dot(ex("autoregressive_digits"), "unrolled"))
    mash = [e for e in edges if e[2].get("label") == "MashLast"]
    assert len(mash) == 3 and all(e[2]["arrowhead"] == "normal" for e in mash)
    _, edges = parse_dot(to_dot(ex("gmm25_sampler"), "compact"))
    (destroy,) = [e for e in edges if e[2].get("tooltip", "").startswith("destroy")]
    assert destroy[2]["label"] == "Normal [back]" and destroy[2]["style"] == "bold"


def test_unrolled_long_chain_has_five_levels_and_ellipsis() -> None:
    ir = ex("ddpm_moons")
    assert ir.steps == 100
    nodes, edges = parse_dot(to_dot(ir, "unrolled"))
    data = [n for n in nodes if n.startswith("d")]
    levels = [n for n in data if nodes[n]["shape"] == "circle"]
    assert [nodes[n]["label"] for n in levels] == ["<A>", "<B>", "<C>", "<Y>", "<Z>"]
    assert len(levels) == 5 and any(nodes[n]["label"] == "<⋯>" for n in data)
    dotted = [e for e in edges if e[2].get("style") == "dotted"]
    assert len(dotted) == 4  # into and out of the ellipsis, on both chains
    assert shown_levels(4) == [0, 1, 2, 3, 4] and None in shown_levels(6)
    assert [letter(t, 100) for t in (0, 99, 100)] + [letter(10, 10)] == list("AYZK")


def test_short_chain_is_fully_unrolled_and_indexed_labels() -> None:
    nodes, _ = parse_dot(to_dot(ex("shuffle3"), "unrolled", labels="indexed"))
    labels = [nodes[f"d{i}"]["label"] for i in range(3)]
    assert labels == ["<x<SUB>0</SUB>>", "<x<SUB>1</SUB>>", "<x<SUB>T</SUB>>"]
    nodes, _ = parse_dot(to_dot(ex("ddpm_moons"), "unrolled", labels="indexed"))
    assert (
        nodes["d4"]["label"] == "<x<SUB>T−1</SUB>>" and nodes["m5"]["label"] == "<x′<SUB>T</SUB>>"
    )


def test_reward_factor_and_frozen_parent() -> None:
    nodes, edges = parse_dot(to_dot(ex("gmm25_sampler"), "unrolled"))
    assert nodes["reward"]["shape"] == "box" and "gmm25" in nodes["reward"]["label"]
    assert ("reward", "m0") in [(t, h) for t, h, a in edges if a.get("dir") == "none"]
    nodes, edges = parse_dot(to_dot(child(), "unrolled"))
    frozen = {n: a for n, a in nodes.items() if n.startswith("p")}
    assert len(frozen) == 7 and all(a["style"] == "dashed" for a in frozen.values())
    assert nodes["p0"]["label"] == "<A″>" and "ddpm_moons" in nodes["caption"]["label"]
    parent_edges = [e for e in visible(edges) if e[0].startswith("p")]
    assert parent_edges and all("#8c8c8c" in e[2]["color"] for e in parent_edges)
    assert "r = sum(x)" in nodes["reward"]["label"]


def _goals(edges):
    return [(t, h, a["xlabel"]) for t, h, a in edges if a.get("tooltip") == "goal"]


def test_a_child_that_only_swaps_the_objective_is_not_drawn_frozen() -> None:
    text = (EXAMPLES / "ddpm_moons.dtg").read_text() + (
        "model swap extends ddpm_moons {\n  objective denoising(weight = elbo)\n}\n"
    )
    ir = dtg.loads(text).model("swap")
    assert ir.parent is not None and ir.parent.name == "ddpm_moons"
    for view in ("compact", "unrolled"):
        nodes, edges = parse_dot(to_dot(ir, view))
        assert not [n for n in nodes if n.startswith("p")] and "caption" not in nodes
        assert "frozen" not in to_dot(ir, view)
        assert not [a for a in nodes.values() if a.get("style") == "dashed"]
        assert _goals(edges) == [("d0", "m0", "~|B")]  # it trains on the data, like its parent
        tex = to_tikz(ir, view)
        assert "dtg frozen]" not in tex and "dtg frozen," not in tex and "A''" not in tex


def test_fine_tuning_goal_is_the_tilted_prior_not_the_data() -> None:
    for name in ("rtb_even_digits", "rtb_mdlm_even_digits"):
        nodes, edges = parse_dot(to_dot(ex(name), "unrolled"))
        assert nodes["p0"]["label"] == "<A″>" and "(frozen)" in nodes["caption"]["label"]
        # beta = 1: the target is p₀(x)·exp(even(x)), even the log-reward
        assert _goals(edges) == [("m0", "p0", "~ ∝ exp(even)")]
    tilted = CHILD.replace("relative_trajectory_balance", "relative_trajectory_balance(beta = 2.5)")
    ir = dtg.loads((EXAMPLES / "ddpm_moons.dtg").read_text() + tilted.replace(" r(", " my_r("))
    _, edges = parse_dot(to_dot(ir.model("child")))
    assert _goals(edges) == [("m0", "p0", "~ ∝ exp(2.5·my_r)")]
    tex = to_tikz(ir.model("child"))
    assert r"\sim\ \propto e^{2.5\,\mathrm{my\_r}}" in tex and tex.count("squiggly") == 1
    # DDPO maximises the reward: no distribution to match, so no goal; with kl, the tilt 1/kl
    _, edges = parse_dot(to_dot(ex("ddpo_even_digits")))
    assert _goals(edges) == []
    penalised = CHILD.replace("relative_trajectory_balance", "policy_gradient(kl = 0.1)")
    ir = dtg.loads((EXAMPLES / "ddpm_moons.dtg").read_text() + penalised).model("child")
    assert _goals(parse_dot(to_dot(ir))[1]) == [("m0", "p0", "~ ∝ exp(r/0.1)")]


def _compact_model_row(steps: int) -> list[str]:
    text = (EXAMPLES / "shuffle3.dtg").read_text().replace("steps T = 2", f"steps T = {steps}")
    nodes, edges = parse_dot(to_dot(dtg.loads(text).model(), "compact"))
    row = sorted((n for n in nodes if n.startswith("m") and n[1:].isdigit()), key=lambda n: n[1:])
    labels = [nodes[n]["label"] for n in row]
    if "ms" in nodes:
        labels.append(nodes["ms"]["label"])
    chain = [(t, h, a.get("label", a.get("style"))) for t, h, a in visible(edges) if t[0] == "m"]
    return labels, chain


def test_compact_view_has_an_ellipsis_only_when_levels_lie_between() -> None:
    # T = 1: B′ is x′[T] itself; T = 2: Z′ = x′[t+1] at most, one step; T = 3: x′[2] may lie between
    labels, chain = _compact_model_row(1)
    assert labels == ["<A′>", "<B′>", "<*>"] and ("m1", "m0", "Guess [logits]") in chain
    labels, chain = _compact_model_row(2)
    assert labels == ["<A′>", "<B′>", "<Z′>", "<*>"]
    assert ("m2", "m1", "Guess [logits]") in chain and "dotted" not in str(chain)
    labels, chain = _compact_model_row(3)
    assert labels == ["<A′>", "<B′>", "<⋯>", "<Z′>", "<*>"]
    assert ("m3", "m2", "dotted") in chain and ("m2", "m1", "dotted") in chain
    text = (EXAMPLES / "shuffle3.dtg").read_text()
    assert r"\cdots" not in to_tikz(dtg.loads(text).model())  # T = 2


def test_program_is_accepted_and_bad_options_rejected() -> None:
    assert to_dot(dtg.load(EXAMPLES / "ddpm_moons.dtg")) == to_dot(ex("ddpm_moons"))
    with pytest.raises(ValueError):
        build(ex("ddpm_moons"), view="sideways")
    with pytest.raises(ValueError):
        build(ex("ddpm_moons"), labels="greek")


# ----------------------------------------------------------------------------- zoom


def test_zoom_shuffle3_three_elements_nine_edges() -> None:
    ir = ex("shuffle3")
    steps = zoom_steps(ir)
    assert len(steps) == 2
    for step in steps:
        assert len(step.sources) == len(step.targets) == 3 and len(step.probs) == 9
        assert step.probs["0", "0"] == pytest.approx(1 / 2 + 1 / 6)
        assert step.probs["0", "1"] == pytest.approx(1 / 6)
    nodes, edges = parse_dot(to_dot(ir, view="zoom"))
    for level in range(3):
        assert len([n for n in nodes if n.startswith(f"z{level}_")]) == 3
    maps = [a["tooltip"] for _, _, a in edges if "↦" in a.get("tooltip", "")]
    assert len(maps) == 18
    for level in (1, 2):
        tips = [
            (t, h, a["tooltip"])
            for t, h, a in edges
            if h.startswith(f"z{level}_") and "↦" in a.get("tooltip", "")
        ]
        assert len(tips) == 9
        totals: dict[str, Fraction] = {}
        for _, _, tip in tips:
            src, rest = tip.split(" ↦ ")
            totals[src] = totals.get(src, Fraction(0)) + Fraction(rest.split(": ")[1])
        assert totals == {"0": 1, "1": 1, "2": 1}
    labels = sorted(a["label"] for n, a in nodes.items() if n.startswith("p1_"))
    assert labels == ["1/6"] * 6 + ["2/3"] * 3


def test_zoom_mask_is_absorbing_and_rejections() -> None:
    steps = zoom_steps(dtg.loads(MASK3).model())
    assert steps[0].targets == ("0", "1", "2", "M") and steps[1].targets == ("M",)
    assert steps[0].probs["1", "M"] == pytest.approx(0.5) and ("1", "2") not in steps[0].probs
    for step in steps:
        for src in step.sources:
            assert sum(p for (s, _), p in step.probs.items() if s == src) == pytest.approx(1)
    for name in ("ddpm_moons", "mdlm_digits", "uniform_digits"):
        ir = ex(name)
        assert zoom_problem(ir)
        with pytest.raises(ValueError):
            to_digraph(ir, view="zoom")


SHUFFLE22 = (
    MASK3.replace("mask3", "shuffle22")
    .replace(
        "token(3)[1] ~ categorical(probs = [0.6, 0.3, 0.1])",
        "token(2)[2] ~ categorical(probs = [0.6, 0.4])",
    )
    .replace("(token(3)[1], time) -> real[1, 3]", "(token(2)[2], time) -> real[2, 2]")
    .replace("Mask(", "Shuffle(")
    .replace("= masked", "~ Categorical(logits = 0)")
)


def _pos(attrs: dict) -> tuple[float, float]:
    x, y = attrs["pos"].rstrip("!").split(",")
    return float(x), float(y)


def _distance(point, tail, head) -> float:
    """From a point to the segment tail-head (inches)."""
    (px, py), (ax, ay), (bx, by) = point, tail, head
    dx, dy = bx - ax, by - ay
    t = max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy)))
    return ((px - ax - t * dx) ** 2 + (py - ay - t * dy) ** 2) ** 0.5


@pytest.mark.parametrize("text", [None, MASK3, SHUFFLE22], ids=["shuffle3", "mask3", "2x2"])
def test_zoom_labels_sit_on_their_own_edge_clear_of_the_others(text) -> None:
    ir = ex("shuffle3") if text is None else dtg.loads(text).model()
    nodes, edges = parse_dot(to_dot(ir, view="zoom"))
    maps = [(t, h, a) for t, h, a in edges if a.get("comment") == "↦"]
    labels = {n: a for n, a in nodes.items() if n.startswith("p")}
    assert len(labels) == len(maps) > 0
    for name, attrs in labels.items():
        level, i, j = name[1:].split("_")
        own = (f"z{int(level) - 1}_{i}", f"z{level}_{j}")
        centre = _pos(attrs)
        assert _distance(centre, *(_pos(nodes[n]) for n in own)) < 1e-3  # on its edge
        # A 10-point label: about 0.6 em a character wide and 1.2 em tall, plus its margin.
        half_w, half_h = (0.6 * 10 * len(attrs["label"]) / 72 + 0.02) / 2, (12 / 72 + 0.02) / 2
        for t, h, _ in maps:
            if (t, h) == own or t[1] != own[0][1]:  # other steps lie in other columns
                continue
            (ax, ay), (bx, by) = _pos(nodes[t]), _pos(nodes[h])
            length = ((bx - ax) ** 2 + (by - ay) ** 2) ** 0.5
            normal = (abs(by - ay) / length, abs(bx - ax) / length)
            reach = half_w * normal[0] + half_h * normal[1]  # the box's half-extent across it
            room = _distance(centre, (ax, ay), (bx, by)) - reach
            assert room > 0.05, (
                f"label {attrs['label']} of {own}: {t}->{h} passes {room:.3f} in away"
            )
    for name, attrs in labels.items():  # the label's tooltip names its edge
        level, i, j = name[1:].split("_")
        own = (f"z{int(level) - 1}_{i}", f"z{level}_{j}")
        (tip,) = [a["tooltip"] for t, h, a in maps if (t, h) == own]
        assert attrs["tooltip"] == tip and tip.endswith(": " + attrs["label"])


# ----------------------------------------------------------------------------- files


@needs_dot
@pytest.mark.parametrize("name", ["ddpm_moons", "gmm25_sampler", "mdlm_digits"])
def test_svg_is_xml_with_labels_and_layout(name: str) -> None:
    text = svg(ex(name), view="unrolled")
    root = ET.fromstring(text)
    ns = "{http://www.w3.org/2000/svg}"
    texts = [t.text for t in root.iter(f"{ns}text")]
    for label in ("A", "B", "A′", "B′", "*"):
        assert label in texts
    centres = {}
    for group in root.iter(f"{ns}g"):
        title = group.find(f"{ns}title")
        shape = next(group.iter(f"{ns}ellipse"), None)
        if group.get("class") == "node" and shape is not None:
            centres[title.text] = (float(shape.get("cx")), float(shape.get("cy")))
    data = [centres[f"d{i}"] for i in range(6) if f"d{i}" in centres]
    model_side = [centres[f"m{i}"] for i in range(6) if f"m{i}" in centres]
    assert [x for x, _ in data] == sorted(x for x, _ in data)  # left to right
    assert max(y for _, y in data) < min(y for _, y in model_side)  # data above the model


@needs_dot
def test_png_pdf_svg_dot_tex_files(tmp_path: Path) -> None:
    ir = ex("mdlm_digits")
    magic = {"png": b"\x89PNG\r\n\x1a\n", "pdf": b"%PDF", "svg": b"<?xml"}
    for fmt, head in magic.items():
        out = render(ir, tmp_path / f"m.{fmt}", view="unrolled")
        assert out.read_bytes().startswith(head)
    assert render(ir, tmp_path / "m.dot").read_text().startswith("// dtg diagram")
    assert "tikzcd" in render(ir, tmp_path / "m.tex", equations=True).read_text()
    png = render(ex("shuffle3"), tmp_path / "z.png", view="zoom")
    assert png.read_bytes().startswith(magic["png"])
    with pytest.raises(ValueError):
        render(ir, tmp_path / "m.jpg")


@pytest.mark.parametrize("view", ["compact", "unrolled"])
@pytest.mark.parametrize("path", [*example_paths(), None], ids=lambda p: p.stem if p else "child")
def test_tikz_one_arrow_per_channel(path: Path | None, view: str) -> None:
    ir = model(path) if path else child()
    tex = to_tikz(ir, view=view)
    assert r"\usepackage{tikz-cd}" in tex and r"\usetikzlibrary{decorations.pathmorphing}" in tex
    body = tex[tex.index(r"\begin{tikzcd}") : tex.index(r"\end{tikzcd}")]
    compact = view == "compact" and not ir.per_level  # per-level kernels: drawn level by level
    steps = 1 if compact else (ir.steps if ir.steps <= 5 else 3)
    # Compact, T = 2: B′ = x′[t] and Z′ = x′[T] are one step apart (no ellipsis between).
    generate_steps = 2 if compact and ir.steps == 2 else steps
    start = int(ir.start.family is not Family.SINGLETON)
    chains = 2 if fine_tuned(ir) else 1  # a frozen parent repeats the generation chain
    harpoons, plain = body.count("harpoon"), body.count(", ->")
    destroy = steps if ir.destroy.stochastic else 0
    assert harpoons == destroy + (generate_steps + start) * chains
    assert plain == (0 if ir.destroy.stochastic else steps)
    goals = body.count("squiggly")
    assert goals == (0 if ir.objective.kind is ObjectiveKind.POLICY_GRADIENT else 1)
    assert (r"\sim" in body) == bool(goals)
    others = goals + body.count("dotted") + int(ir.reward is not None)  # goal, ellipses, factor
    others += body.count("dtg grad")  # the reward feeding the steps that use grad(logr, …)
    assert body.count(r"\arrow[") == harpoons + plain + others


def test_equations_latex_and_text() -> None:
    ir = ex("ddpm_moons")
    latex = equations(ir)
    assert latex.count(r"\begin{align*}") == 1
    for channel in ir.channels:
        assert channel.latex in latex
    table = equations(ir, format="text").splitlines()
    assert table[0].split()[:3] == ["channel", "family", "nets"] and len(table) == 5
    assert table[3].split()[:3] == ["generate", "Guess", "eps"]


def test_missing_dot_is_a_dtg_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    ir = ex("ddpm_moons")
    monkeypatch.setattr(render_output.shutil, "which", lambda name: None)
    with pytest.raises(dtg.DtgError) as info:
        render(ir, tmp_path / "m.png")
    message = str(info.value)
    assert "apt-get install graphviz" in message and "brew install graphviz" in message
    assert ".dot" in message and ".tex" in message
    assert render(ir, tmp_path / "m.dot").exists() and render(ir, tmp_path / "m.tex").exists()
    monkeypatch.setattr(render_output.shutil, "which", lambda name: "/usr/bin/dot")

    def missing(*args, **kwargs):
        raise graphviz.ExecutableNotFound(["dot"])

    monkeypatch.setattr(graphviz.Digraph, "pipe", missing)
    with pytest.raises(dtg.DtgError, match="apt-get install graphviz"):
        svg(ir)


# ----------------------------------------------------------------------------- CLI


@pytest.fixture
def cli():
    return dtg.cli.main


def test_cli_render(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    parser = dtg.cli.build_parser()
    args = parser.parse_args(["render", "f.dtg", "--view", "zoom", "--labels", "indexed"])
    assert args.run.__name__ == "cmd_render" and args.output is None and not args.equations
    out = tmp_path / "d.dot"
    assert cli(["render", str(EXAMPLES / "shuffle3.dtg"), "-o", str(out), "--view", "zoom"]) == 0
    assert out.exists() and f"wrote {out}" in capsys.readouterr().out
    monkeypatch.chdir(tmp_path)
    if HAS_DOT:
        assert cli(["render", str(EXAMPLES / "ddpm_moons.dtg"), "--equations"]) == 0
        assert (tmp_path / "ddpm_moons.svg").exists()
    tex, gmm = tmp_path / "g.tex", str(EXAMPLES / "gmm25_sampler.dtg")
    argv = ["render", gmm, "-o", str(tex), "--view", "unrolled", "--model", "gmm25_sampler"]
    assert cli(argv) == 0
    assert r"\begin{tikzcd}" in tex.read_text()


def test_cli_render_errors(cli, tmp_path: Path, capsys) -> None:
    ddpm = str(EXAMPLES / "ddpm_moons.dtg")
    assert cli(["render", ddpm, "--model", "nope", "-o", str(tmp_path / "x.dot")]) == 2
    assert "models: ddpm_moons" in capsys.readouterr().err
    assert cli(["render", ddpm, "-o", str(tmp_path / "x.jpg")]) == 2
    assert cli(["render", ddpm, "--view", "zoom", "-o", str(tmp_path / "x.dot")]) == 2
    assert "zoomed-in view" in capsys.readouterr().err
    assert cli(["render", str(tmp_path / "missing.dtg")]) == 2
    assert cli(["render", ddpm, "--view", "sideways"]) == 2
    bad = tmp_path / "bad.dtg"
    bad.write_text("model m {\n  steps T = 0\n}\n")
    assert cli(["render", str(bad), "-o", str(tmp_path / "x.dot")]) == 1
    assert "error" in capsys.readouterr().err

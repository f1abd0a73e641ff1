"""The renderer on models with kernels for single levels (``destroy x[1] ~ …``).

Expected nets, levels and kernels are read from the ``.dtg`` source text itself (which statement
defines which level), not from the IR the renderer draws.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from conftest import EXAMPLES
from test_render import parse_dot, visible

import dtg
import dtg.cli
from dtg.render import build, channel_rows, equations, render, to_dot, to_tikz, zoom_problem
from dtg.render import output as render_output

HAS_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAS_DOT, reason="Graphviz 'dot' is not installed")

HVAE = (EXAMPLES / "hvae_digits.dtg").read_text()
# Level 1 has its own 64 → 64 kernel; a destruction template covers levels 2 and 3, a generation
# template levels 3 and 2. (A 64 → 16 level 1 beside a 16-D destruction template is refused by the
# checker: the template is typed on the data's space.)
MIXED = """
model mixed {
  data x : real[64] ~ digits(dequantize = true)
  steps T = 3
  net enc : (real[64]) -> real[128] = mlp(hidden = [64])
  net dec : (real[64]) -> real[128] = mlp(hidden = [64])
  net up : (real[64], time) -> real[64] = mlp(hidden = [64])
  destroy  x[1] ~ Normal(enc(x[0])[0:64], exp(0.5 * enc(x[0])[64:128]))
  destroy  x[t] ~ Normal(0.9 * x[t-1], 0.3)
  generate x[T] ~ Normal(0, 1)
  generate x[t-1] ~ Normal(up(x[t], t), 0.3)
  generate x[0] ~ Normal(dec(x[1])[0:64], exp(0.5 * dec(x[1])[64:128]))
  objective elbo
}
"""
# 64 → 16 at level 1, then 16-D levels: the generation template covers levels 3 and 2 in 16-D.
MIXED_SPACES = """
model mixed_spaces {
  data x : real[64] ~ digits(dequantize = true)
  steps T = 3
  net enc : (real[64]) -> real[32] = mlp(hidden = [64])
  net dec : (real[16]) -> real[128] = mlp(hidden = [64])
  net up : (real[16], time) -> real[16] = mlp(hidden = [64])
  destroy  x[1] ~ Normal(enc(x[0])[0:16], exp(0.5 * enc(x[0])[16:32]))
  destroy  x[2] ~ Normal(0.9 * x[1], 0.3)
  destroy  x[3] ~ Normal(0.9 * x[2], 0.3)
  generate x[T] ~ Normal(0, 1)
  generate x[t-1] ~ Normal(up(x[t], t), 0.3)
  generate x[0] ~ Normal(dec(x[1])[0:64], exp(0.5 * dec(x[1])[64:128]))
  objective elbo
}
"""
# A long chain whose one kernel of its own sits in the middle, where the ellipsis would hide it.
LONG = """
model long {
  data x : real[2] ~ moons(noise = 0.05)
  steps T = 30
  net mid : (real[2]) -> real[2] = mlp(hidden = [16])
  net g : (real[2], time) -> real[2] = mlp(hidden = [16])
  destroy  x[t] ~ Normal(0.95 * x[t-1], 0.2)
  destroy  x[15] ~ Normal(mid(x[14]), 0.2)
  generate x[T] ~ Normal(0, 1)
  generate x[t-1] ~ Normal(g(x[t], t), 0.2)
  objective elbo
}
"""
SOURCES = {"hvae": HVAE, "mixed": MIXED, "mixed_spaces": MIXED_SPACES, "long": LONG}


def load(name: str):
    return dtg.loads(SOURCES[name]).model()


# ----------------------------------------------------------------------------- the source as reference

_KERNEL = re.compile(r"^\s*(destroy|generate)\s+x\[(\w+(?:-1)?)\]\s*~\s*(.*?)\s*$", re.M)


def statements(source: str) -> dict[tuple[str, str], str]:
    """``(role, index as written) -> kernel body`` of every destroy / generate statement."""
    return {(m[1], m[2]): m[3] for m in _KERNEL.finditer(source)}


def steps_of(source: str) -> int:
    return int(re.search(r"steps T = (\d+)", source)[1])


def nets_in(source: str, body: str) -> list[str]:
    declared = set(re.findall(r"^\s*net (\w+) :", source, re.M))
    return list(dict.fromkeys(n for n in re.findall(r"\b(\w+)\(", body) if n in declared))


def expected_body(source: str, role: str, level: int) -> tuple[str, bool]:
    """The kernel of step ``level`` (destroy: defines x[level]; generate: defines x[level-1]) and
    whether it is the level's own (else the template)."""
    found = statements(source)
    own = (role, str(level if role == "destroy" else level - 1))
    if own in found:
        return found[own], True
    return found[(role, "t" if role == "destroy" else "t-1")], False


def own_levels(source: str, role: str) -> list[int]:
    """The steps ``l`` with a kernel of their own (generate x[k] is step k + 1)."""
    steps, out = steps_of(source), []
    for r, index in statements(source):
        if r == role and index.isdigit() and not (role == "generate" and int(index) == steps):
            out.append(int(index) + (role == "generate"))
    return sorted(out)


def level_of(label: str, steps: int) -> int:
    """The level of an indexed node label (``<x<SUB>14</SUB>>``, ``<x′<SUB>T−1</SUB>>``)."""
    sub = re.search(r"<SUB>(.*)</SUB>", label)[1]
    return {"T": steps, "T\u22121": steps - 1}.get(sub) or int(sub)


# ----------------------------------------------------------------------------- the diagrams


@pytest.mark.parametrize("view", ["compact", "unrolled"])
@pytest.mark.parametrize("name", list(SOURCES))
def test_each_edge_carries_its_levels_kernel(name: str, view: str) -> None:
    source, steps = SOURCES[name], steps_of(SOURCES[name])
    nodes, edges = parse_dot(to_dot(load(name), view=view, labels="indexed"))
    drawn: dict[str, set[int]] = {"destroy": set(), "generate": set()}
    for tail, head, attrs in visible(edges):
        role = attrs.get("tooltip", "").split(":")[0]
        if role not in drawn:
            continue
        a, b = level_of(nodes[tail]["label"], steps), level_of(nodes[head]["label"], steps)
        assert b - a == (1 if role == "destroy" else -1)
        level = max(a, b)
        body, _ = expected_body(source, role, level)
        nets = nets_in(source, body)
        label = attrs["label"]
        assert re.findall(r"\[(.*)\]$", label) == ([", ".join(nets)] if nets else [])
        assert ("bold" in attrs.get("style", "")) == bool(nets)
        drawn[role].add(level)
    for role in drawn:  # no kernel of a level's own hides in an ellipsis
        assert set(own_levels(source, role)) <= drawn[role], role
    if steps <= 5:
        assert drawn["destroy"] == drawn["generate"] == set(range(1, steps + 1))


def test_hvae_edges_by_name() -> None:
    """The brief's picture: enc1 then enc2 on top, dec2 then dec1 below (letters)."""
    nodes, edges = parse_dot(to_dot(load("hvae"), view="unrolled"))
    labels = {(t, h): a["label"] for t, h, a in visible(edges) if "label" in a}
    assert labels[("d0", "d1")] == "Normal [enc1]" and labels[("d1", "d2")] == "Normal [enc2]"
    assert labels[("m2", "m1")] == "Normal [dec2]" and labels[("m1", "m0")] == "Normal [dec1]"
    assert labels[("ms", "m2")] == "Normal"
    assert [nodes[f"d{i}"]["label"] for i in range(3)] == ["<A>", "<B>", "<C>"]


@pytest.mark.parametrize("labels", ["letters", "indexed"])
def test_levels_of_other_spaces_are_told_apart(labels: str) -> None:
    names = ["A", "B", "C"] if labels == "letters" else ["x₀", "x₁", "x_T"]  # T = 2
    spaces = ["real[64]", "real[16]", "real[4]"]  # the example's 64 → 16 → 4
    d = build(load("hvae"), "unrolled", labels)
    assert d.note == "   ".join(f"{n} : {s}" for n, s in zip(names, spaces, strict=True))
    for tex_name, space in zip(["A", "B", "C"], spaces, strict=True):
        if labels == "letters":
            assert rf"${tex_name}$: \texttt{{{space}}}" in d.note_tex
    nodes, _ = parse_dot(to_dot(load("hvae"), view="unrolled", labels=labels))
    for i, (name, space) in enumerate(zip(names, spaces, strict=True)):
        assert nodes[f"d{i}"]["tooltip"] == f"{name}: level {i}, {space}"
    assert nodes["m1"]["tooltip"].endswith(", real[16]")
    mixed = build(load("mixed_spaces"), "unrolled")
    assert mixed.note == "A : real[64]   B : real[16]   C : real[16]   D : real[16]"


def test_one_space_everywhere_adds_no_space_note() -> None:
    d = build(load("mixed"), "unrolled")
    assert d.note == "" and d.note_tex == ""
    nodes, _ = parse_dot(to_dot(load("mixed"), view="unrolled"))
    levels = [a["tooltip"] for a in nodes.values() if ": level " in a.get("tooltip", "")]
    assert levels and all(tip.endswith(", real[64]") for tip in levels)  # the hover says it


@pytest.mark.parametrize("name", list(SOURCES))
def test_compact_view_draws_a_per_level_chain_level_by_level(name: str) -> None:
    ir = load(name)
    compact, unrolled = build(ir, "compact"), build(ir, "unrolled")
    key = [(e.src, e.dst, e.kind, e.label) for e in compact.edges]
    assert key == [(e.src, e.dst, e.kind, e.label) for e in unrolled.edges]
    assert [n.name for n in compact.nodes] == [n.name for n in unrolled.nodes]
    assert compact.note.startswith("kernels for single levels: drawn level by level")
    assert "level by level" not in unrolled.note and "t = 1.." not in compact.note
    assert "drawn level by level" in to_dot(ir) and "drawn level by level" in to_tikz(ir)
    template = dtg.load(EXAMPLES / "ddpm_moons.dtg").model()  # templates keep one step
    assert build(template, "compact").note.startswith("A = x[t\u22121], B = x[t]")


# ----------------------------------------------------------------------------- equations


def _collapse(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def test_equation_rows_one_per_kernel_in_chain_order() -> None:
    rows = channel_rows(load("hvae"))
    found = statements(HVAE)
    want = [
        ("destroy", "1", "enc1"),
        ("destroy", "2", "enc2"),
        ("start", "T", "-"),
        ("generate", "1", "dec2"),
        ("generate", "0", "dec1"),
    ]
    assert [(r[0], r[2]) for r in rows] == [(role, nets) for role, _, nets in want]
    for (role, index, _), row in zip(want, rows, strict=True):
        body = found[("generate" if role == "start" else role, index)]
        assert _collapse(row[3]) == _collapse(f"x[{index}] ~ {body}")


def test_templates_are_one_row_with_the_levels_they_cover() -> None:
    rows = channel_rows(load("mixed"))
    assert [(r[0], r[2]) for r in rows] == [
        ("destroy", "enc"),
        ("destroy", "-"),
        ("start", "-"),
        ("generate", "up"),
        ("generate", "dec"),
    ]
    assert rows[0][3].startswith("x[1] ~ Normal(enc(x[0])") and "(t = " not in rows[0][3]
    assert rows[1][3] == "x[t] ~ Normal(0.9 * x[t-1], 0.3)   (t = 2..T)"
    assert rows[3][3] == "x[t-1] ~ Normal(up(x[t], t), 0.3)   (t = 2..T)"
    assert rows[4][3].startswith("x[0] ~ Normal(dec(x[1])")
    spaces = channel_rows(load("mixed_spaces"))
    assert [r[3].split(" ~")[0] for r in spaces] == [
        "x[1]",
        "x[2]",
        "x[3]",
        "x[T]",
        "x[t-1]",
        "x[0]",
    ]
    long = channel_rows(load("long"))
    assert long[0][3].endswith("(t = 1..T except 15)") and long[1][3].startswith("x[15] ~")
    assert long[3][3].endswith("(t = 1..T)")


def _latex_rows(block: str) -> list[tuple[str, str, str]]:
    """(role, defined level, scope) of each row of an align block."""
    body = block[block.index(r"\begin{") : block.index(r"\end{")].split("\n", 1)[1]
    out = []
    for row in body.split(" \\\\\n"):
        m = re.match(r"\s*\\text\{(\w+)\}.*?&:\\quad x_\{([^}]*)\} \\sim .*&&\\quad ?(.*)$", row)
        assert m, row
        out.append((m[1], m[2], m[3].strip()))
    return out


def test_latex_equations_per_level() -> None:
    assert _latex_rows(equations(load("hvae"))) == [
        ("destroy", "1", ""),
        ("destroy", "2", ""),
        ("start", "T", ""),
        ("generate", "1", ""),
        ("generate", "0", ""),
    ]
    assert _latex_rows(equations(load("mixed"))) == [
        ("destroy", "1", ""),
        ("destroy", "t", r"t = 2, \dots, T"),
        ("start", "T", ""),
        ("generate", "t-1", r"t = 2, \dots, T"),
        ("generate", "0", ""),
    ]
    assert _latex_rows(equations(load("long")))[0][2] == r"t = 1, \dots, T,\ t \neq 15"
    template = dtg.load(EXAMPLES / "ddpm_moons.dtg").model()
    assert [r[2] for r in _latex_rows(equations(template))] == [r"t = 1, \dots, T"] * 2 + [""]


# ----------------------------------------------------------------------------- zoom, formats, CLI


def test_zoom_refuses_per_level_models(tmp_path: Path, capsys) -> None:
    ir = load("hvae")
    problem = zoom_problem(ir)
    assert problem and "kernels for single levels" in problem
    with pytest.raises(ValueError, match="kernels for single levels"):
        render(ir, tmp_path / "z.dot", view="zoom")
    path = EXAMPLES / "hvae_digits.dtg"
    code = dtg.cli.main(["render", str(path), "--view", "zoom", "-o", str(tmp_path / "z.svg")])
    err = capsys.readouterr().err
    assert code == 2 and "kernels for single levels" in err and "Traceback" not in err
    assert not (tmp_path / "z.svg").exists()


def test_dot_and_tex_without_graphviz(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(render_output.shutil, "which", lambda name: None)
    ir = load("hvae")
    for view in ("compact", "unrolled"):
        dot = render(ir, tmp_path / f"{view}.dot", view=view, equations=True).read_text()
        _, edges = parse_dot(dot)
        drawn = sorted(a["label"] for *_, a in edges if "[" in a.get("label", ""))
        assert drawn == [f"Normal [{net}]" for net in ("dec1", "dec2", "enc1", "enc2")]
        lines = re.findall(r'label="([^"]*)"', dot)[-1].split("\\l")  # note, blank, table
        note = ["kernels for single levels: drawn level by level (no single template step)"]
        spaces = "A : real[64]   B : real[16]   C : real[4]"
        assert lines[: lines.index("")] == (note if view == "compact" else []) + [spaces]
        roles = [line.split()[0] for line in lines[lines.index("") + 3 :] if line]
        assert roles == ["destroy", "destroy", "start", "generate", "generate"]
        tex = render(ir, tmp_path / f"{view}.tex", view=view, equations=True).read_text()
        arrows = re.findall(r"\\mathrm\{(\w+)\}", tex[: tex.index(r"\end{tikzcd}")])
        assert sorted(arrows) == ["dec1", "dec2", "enc1", "enc2"]
        assert len(_latex_rows(tex[tex.index(r"\begin{aligned}") :])) == 5
        assert r"\texttt{real[4]}" in tex
    with pytest.raises(dtg.DtgError, match="install Graphviz"):
        render(ir, tmp_path / "m.png")


@needs_dot
def test_images(tmp_path: Path) -> None:
    ir = load("mixed_spaces")
    svg = render(ir, tmp_path / "m.svg", equations=True).read_text()
    for text in ("Normal [enc]", "Normal [up]", "Normal [dec]", "real[16]", "(t = 2..T)"):
        assert text in svg
    png = render(load("hvae"), tmp_path / "h.png", view="unrolled", equations=True)
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    argv = [
        "render",
        str(EXAMPLES / "hvae_digits.dtg"),
        "--equations",
        "-o",
        str(tmp_path / "c.png"),
    ]
    assert dtg.cli.main(argv) == 0


def test_template_note_survives_equations(tmp_path: Path) -> None:
    """The compact view's range of t stays under the diagram when the equations are added."""
    ir = dtg.load(EXAMPLES / "ddpm_moons.dtg").model()
    dot = render(ir, tmp_path / "m.dot", equations=True).read_text()
    final = re.findall(r'label="([^"]*)"', dot)[-1]
    assert final.startswith("A = x[t\u22121], B = x[t],  t = 1..T   (T = 100)\\l\\lchannel")

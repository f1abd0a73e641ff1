"""Hover texts of SVG diagrams (issue 25): every channel edge of every example's compact diagram
carries its kernel as written (the text ``--equations text`` prints) and its nets' signatures;
every level node its level and space."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from conftest import example_paths

import dtg
from dtg.render import render
from dtg.render.equations import channel_rows
from dtg.render.scene import build

XLINK = "{http://www.w3.org/1999/xlink}title"
SVG = "{http://www.w3.org/2000/svg}"


def titles(svg: str, kind: str) -> list[str]:
    """The hover texts of the ``<g class="edge">`` (or ``node``) groups of an SVG."""
    root = ET.fromstring(svg)
    out = []
    for group in root.iter(f"{SVG}g"):
        if group.get("class") == kind:
            out += [a.get(XLINK) for a in group.iter(f"{SVG}a") if a.get(XLINK)][:1]
    return out


@pytest.mark.parametrize("path", example_paths(), ids=lambda p: p.stem)
def test_every_channel_edge_shows_its_kernel(path, tmp_path) -> None:
    ir = dtg.load(path).model()
    out = render(ir, tmp_path / "d.svg", view="compact")
    svg = out.read_text()
    kernels = {row[3].split("   (")[0] for row in channel_rows(ir)}
    if ir.parent is not None:
        kernels |= {row[3].split("   (")[0] for row in channel_rows(ir.parent)}
    roles = ("destroy: ", "generate: ", "start: ")
    shown = [t for t in titles(svg, "edge") if t.startswith(roles)]
    edges = [e for e in build(ir, "compact").edges if e.kind in ("harpoon", "arrow")]
    assert len(shown) == len(edges) > 0
    for text in shown:
        kernel, *nets = text.split(": ", 1)[1].split("; ")
        assert kernel in kernels, (kernel, kernels)
        for net in nets:
            name = net.split(" : ")[0]
            spec = (ir.nets | (ir.parent.nets if ir.parent else {}))[name]
            assert (
                net
                == f"{name} : ({', '.join(map(str, spec.inputs))}) -> {spec.output} = {spec.arch}"
            )
    levels = [t for t in titles(svg, "node") if ": level " in t]
    assert levels and all(
        str(ir.message.space) in t or "real[" in t or "token(" in t for t in levels
    )

"""Generative commutative diagrams of dtg models (DESIGN.md §2).

A model is drawn as two chains of levels, left to right: the destruction chain on top (A ⇀ B ⇀ …,
the data node filled) and the generation chain below it (A′ ↽ B′ ↽ …, primed), joined by the goal
``A′ ~ A`` (``~|B`` when the objective trains a conditional). Harpoons are stochastic channels,
full arrows deterministic maps, bold edges learned channels (with their nets named); ``*`` is the
singleton; a reward is a factor box on A′; the parent a child fine-tunes is a frozen grey copy
(A″), and the goal then joins A′ to it, tilted by the reward (``~ ∝ exp(β·r)``); a step whose
kernel uses the reward's gradient (``grad(logr, x[t])``) gets a dashed ``∇ logr`` arrow from the
factor box to the level it starts from (:mod:`dtg.render.grads`). A model with kernels for single
levels (``destroy x[1] ~ …``) is drawn level by level in both views, each edge with its own
level's kernel (:mod:`dtg.render.levels`).

>>> import dtg
>>> from dtg import render
>>> ir = dtg.load("examples/ddpm_moons.dtg").model()
>>> render.to_dot(ir, view="unrolled")          # DOT text          # doctest: +SKIP
>>> render.render(ir, "ddpm.svg")               # .svg .png .pdf .dot .tex  # doctest: +SKIP
"""

from __future__ import annotations

from .dot import to_digraph, to_dot
from .equations import channel_rows, equations
from .heatmap import SCHEDULE_FORMATS, destroyed_table, draw_schedule, schedule_problem
from .names import LABEL_STYLES
from .output import FORMATS, IMAGE_FORMATS, render, svg
from .scene import VIEWS, Diagram, build
from .tikz import to_tikz
from .zoom import ZoomStep, zoom_problem, zoom_steps

__all__ = [
    "to_digraph",
    "to_dot",
    "to_tikz",
    "equations",
    "channel_rows",
    "render",
    "svg",
    "build",
    "Diagram",
    "zoom_steps",
    "zoom_problem",
    "ZoomStep",
    "VIEWS",
    "SCHEDULE_FORMATS",
    "destroyed_table",
    "draw_schedule",
    "schedule_problem",
    "LABEL_STYLES",
    "FORMATS",
    "IMAGE_FORMATS",
]

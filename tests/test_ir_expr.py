"""The typed expression IR: the printer agrees with the syntax printer on every lowered
expression, every node carries a space, and the fold visits what walk visits."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ROOT

import dtg
from dtg.ir import expr as ir
from dtg.ir.printer import to_text
from dtg.syntax.printer import expr_to_source

EXAMPLES = sorted((ROOT / "examples").glob("*.dtg"))

PRECEDENCE = """
model p {
  data x : real[2] ~ moons()
  steps T = 10
  schedule s(u) = -(u / T)^2 + 2^-u - (1 - u) * (u + 1) / (2 * u + 1)
  net f : (real[2], time) -> real[4] = mlp(hidden = [8])
  destroy x[t] ~ Normal(x[t-1] * (1 + 0.1 * tanh(f(x[t-1], t)[0:2])), sqrt(s(t)^2 + 1e-3) * [1, 2])
  generate x[T] ~ Normal(0, 1)
  generate x[t-1] ~ Normal(-x[t] + min(x[t], 0.5) - max(1, x[t]), exp(-abs(sum(x[t]))))
  objective elbo
}
"""


def _pairs(program: dtg.Program):
    """(lowered IR, the syntax it came from) for every kernel argument and schedule body."""
    for model in program.models:
        for statement in model.syntax.statements:
            if hasattr(statement, "kernel") and hasattr(statement.kernel.body, "args"):
                call = statement.kernel.body
                channel = next(c for c in model.every_channel if c.span == statement.span)
                names = list(channel.args)
                for name, node in zip(names, call.args, strict=False):
                    yield channel.args[name], node
            if type(statement).__name__ == "Schedule":
                yield model.schedule_defs[statement.name].body, statement.body


@pytest.mark.parametrize("text", [PRECEDENCE], ids=["precedence"])
def test_printer_matches_the_syntax_printer_on_hard_precedence(text: str) -> None:
    pairs = list(_pairs(dtg.loads(text)))
    assert len(pairs) >= 6
    for lowered, node in pairs:
        assert to_text(lowered) == expr_to_source(node)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_printer_matches_the_syntax_printer_on_examples(path: Path) -> None:
    for lowered, node in _pairs(dtg.load(path)):
        assert to_text(lowered) == expr_to_source(node)


def test_lowered_nodes_are_resolved_and_typed() -> None:
    model = dtg.loads(PRECEDENCE).model()
    mean = model.destroy.args["mean"]
    kinds = {type(n) for n in ir.walk(mean)}
    assert ir.LevelRef in kinds and ir.NetCall in kinds and ir.Index in kinds
    for node in ir.walk(mean):
        assert isinstance(node.space, dtg.ir.Space) and node.span is not None
    index = next(n for n in ir.walk(mean) if isinstance(n, ir.Index))
    assert index.items == (slice(0, 2),) and index.space.shape == (2,)
    assert index.base.space.shape == (4,)  # the net's output, before slicing
    level = next(n for n in ir.walk(mean) if isinstance(n, ir.LevelRef))
    assert level.level == ir.Level(ir.LevelAnchor.CURRENT, -1) and level.level.key == "prev"
    std = model.destroy.args["std"]
    assert std.space.shape == (2,)  # a scalar times [1, 2]


def test_fold_visits_every_node_once() -> None:
    class Count(ir.ExprFold[int]):
        def __getattr__(self, name: str):
            return lambda node, *children: 1 + sum(children)

    model = dtg.loads(PRECEDENCE).model()
    for expr in (*model.destroy.args.values(), *model.generate.args.values()):
        assert Count().fold(expr) == sum(1 for _ in ir.walk(expr))

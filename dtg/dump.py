"""Readable dumps of each compiler stage (``dtg compile --emit ast|ir``)."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from .ir import Channel, ModelIR
from .syntax import ast
from .syntax.printer import expr_to_source

__all__ = ["dump_ast", "dump_ir"]


def dump_ast(node: Any, indent: int = 0) -> str:
    """The AST as an indented tree: one node per line with its fields and its location."""
    pad = "  " * indent
    if isinstance(node, ast.Module):
        return "\n".join(dump_ast(m, indent) for m in node.models)
    if isinstance(node, (ast.Number, ast.Name, ast.String)):
        value = (
            node.text if isinstance(node, ast.Number) else getattr(node, "id", None) or node.value
        )
        return f"{pad}{type(node).__name__} {value!s}  @{node.span.line}:{node.span.column}"
    if not dataclasses.is_dataclass(node):
        return f"{pad}{node!r}"
    span = getattr(node, "span", None)
    where = f"  @{span.line}:{span.column}" if span is not None and span.line else ""
    scalars, children = [], []
    for field in dataclasses.fields(node):
        if not field.compare:
            continue
        value = getattr(node, field.name)
        if isinstance(value, ast.Node):
            children.append((field.name, [value]))
        elif isinstance(value, tuple) and value and isinstance(value[0], ast.Node):
            children.append((field.name, list(value)))
        elif value is not None and value != ():
            scalars.append(f"{field.name}={value!r}")
    lines = [f"{pad}{type(node).__name__}{' ' if scalars else ''}{' '.join(scalars)}{where}"]
    for name, items in children:
        lines.append(f"{pad}  .{name}")
        lines.extend(dump_ast(item, indent + 2) for item in items)
    return "\n".join(lines)


def _row(values: np.ndarray, count: int) -> str:
    shown = ", ".join("nan" if np.isnan(v) else f"{v:.6g}" for v in values[:count])
    more = f", … ({len(values)} entries)" if len(values) > count else ""
    return f"[{shown}{more}]"


def _channel(title: str, channel: Channel, rows: int) -> list[str]:
    arrow = "⇀" if channel.stochastic else "→"
    source = f"x[{channel.source}]" if channel.source else "·"
    lines = [
        f"  {title}: {source} {arrow} x[{channel.target}]  family={channel.family.name} "
        f"({'learned: ' + ', '.join(channel.nets) if channel.learned else 'fixed'})",
        f"    kernel: {expr_to_source(channel.body)}",
    ]
    for name, value in channel.params.items():
        shown = expr_to_source(value) if isinstance(value, ast.Node) else str(value)
        lines.append(f"    {name}(t) = {shown}")
    for name, value in channel.options.items():
        lines.append(f"    option {name} = {value}")
    for name, table in channel.tables.items():
        lines.append(f"    table {name}: {_row(table, rows)}")
    if channel.latex:
        lines.append(f"    latex: {channel.latex}")
    return lines


def dump_ir(ir: ModelIR, rows: int = 5) -> str:
    """The withholding graph of one model, with the first ``rows`` entries of each table."""
    message = ir.message
    lines = [
        f"model {ir.name}" + (f" extends {ir.parent.name}" if ir.parent else ""),
        f"  steps {ir.steps_name} = {ir.steps}",
        f"  message {message.name}: x[0] : {message.space} ({message.role})"
        + (f", x[1..T] : {message.level_space}" if message.level_space != message.space else "")
        + (" with [MASK]" if message.masked else ""),
    ]
    if message.source is not None:
        lines.append(f"  source: {expr_to_source(message.source)}")
    for name, net in ir.nets.items():
        inputs = ", ".join(map(str, net.inputs))
        options = ", ".join(f"{k}={v}" for k, v in net.options.items())
        lines.append(
            f"  net {name}: ({inputs}) -> {net.output} = {net.arch}({options})"
            f"  [{net.parameters:,} parameters]"
        )
    for name, table in ir.schedules.items():
        lines.append(f"  schedule {name}: {_row(table, rows)}")
    lines += _channel("destroy", ir.destroy, rows)
    lines += _channel("generate", ir.generate, rows)
    lines += _channel("start", ir.start, rows)
    for name, table in ir.marginals.items():
        lines.append(f"  marginal {name}: {_row(table, rows)}")
    if ir.reward is not None:
        lines.append(
            f"  reward {ir.reward.name} = {expr_to_source(ir.reward.body)}"
            + (f"  (target {ir.reward.target})" if ir.reward.target else "")
        )
    options = ", ".join(f"{k}={v}" for k, v in ir.objective.options.items() if v is not None)
    lines.append(f"  objective {ir.objective.kind.value}({options})")
    lines.append("  train " + ", ".join(f"{k}={v}" for k, v in ir.train.items()))
    return "\n".join(lines)

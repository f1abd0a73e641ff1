"""A readable dump of the syntax tree (``dtg compile --emit ast``)."""

from __future__ import annotations

import dataclasses
from typing import Any

from . import ast

__all__ = ["dump_ast"]


def dump_ast(node: Any, indent: int = 0) -> str:
    """The AST as an indented tree: one node per line with its fields and its location.

    Iterative (an explicit stack), so a long chain ``a + b + c + …`` dumps like any tree.
    """
    lines: list[str] = []
    stack: list[tuple[Any, int] | str] = [(node, indent)]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            lines.append(item)
            continue
        current, level = item
        if isinstance(current, ast.Module):
            stack.extend((m, level) for m in reversed(current.models))
            continue
        line, children = _node(current, level)
        lines.append(line)
        for name, items in reversed(children):
            stack.extend((child, level + 2) for child in reversed(items))
            stack.append(f"{'  ' * level}  .{name}")
    return "\n".join(lines)


def _node(node: Any, indent: int) -> tuple[str, list[tuple[str, list[Any]]]]:
    """One node's line and its children by field."""
    pad = "  " * indent
    if isinstance(node, (ast.Number, ast.Name, ast.String)):
        value = (
            node.text if isinstance(node, ast.Number) else getattr(node, "id", None) or node.value
        )
        return f"{pad}{type(node).__name__} {value!s}  @{node.span.line}:{node.span.column}", []
    if not dataclasses.is_dataclass(node):
        return f"{pad}{node!r}", []
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
    return f"{pad}{type(node).__name__}{' ' if scalars else ''}{' '.join(scalars)}{where}", children

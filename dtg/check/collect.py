"""Collect a model's statements through ``extends``: duplicates, what a child may replace."""

from __future__ import annotations

from typing import Any

from ..errors import (
    DtgCheckError,
    DtgNameError,
)
from ..ir import (
    ModelIR,
)
from ..syntax import ast
from ..syntax.printer import index_to_source

__all__ = ["collect", "is_start", "walk_syntax", "describe", "LEVEL_KEYS"]

#: The key prefixes of statements for one level (``destroy x[1] ~ …``, ``generate x[0] ~ …``):
#: their level is decided by the checker, which knows ``T``.
LEVEL_KEYS = ("destroy x[", "generate x[")


_SINGLE = {
    ast.Data: "message",
    ast.SpaceDecl: "message",
    ast.Steps: "steps",
    ast.Destroy: "destroy",
    ast.Reward: "reward",
    ast.Objective: "objective",
    ast.Train: "train",
}
_CHILD_MAY_REPLACE = {"reward", "objective", "train"}


def _key(statement: ast.Statement) -> str:
    if isinstance(statement, ast.Schedule):
        return f"schedule {statement.name}"
    if isinstance(statement, ast.Net):
        return f"net {statement.name}"
    if isinstance(statement, ast.Destroy) and not _reads_t(statement):
        return f"destroy x[{index_to_source(statement.level.index)}]"
    if isinstance(statement, ast.Generate):
        if not is_start(statement):
            return "generate step"
        if isinstance(statement.level.index, ast.Name):
            return "generate start"  # x[T]
        return f"generate x[{index_to_source(statement.level.index)}]"
    return _SINGLE[type(statement)]


def _reads_t(statement: ast.Destroy | ast.Generate) -> bool:
    return any(isinstance(n, ast.Name) and n.id == "t" for n in walk_syntax(statement.level.index))


def is_start(statement: ast.Generate) -> bool:
    """Whether a generate statement names a fixed level (``x[T]``, ``x[1]``) rather than the
    template's ``x[t-1]``."""
    return not _reads_t(statement)


def walk_syntax(node: Any):
    stack = [node]
    while stack:
        item = stack.pop()
        yield item
        if isinstance(item, ast.Binary):
            stack += [item.left, item.right]
        elif isinstance(item, ast.Unary):
            stack.append(item.operand)
        elif isinstance(item, ast.Call):
            stack += list(item.args) + [k.value for k in item.kwargs]
        elif isinstance(item, ast.Subscript):
            stack += [item.base, *item.indices]
        elif isinstance(item, ast.Slice):
            stack += [i for i in (item.start, item.stop) if i is not None]
        elif isinstance(item, ast.Vector):
            stack += list(item.items)


def describe(key: str) -> str:
    return {
        "message": "data/space declaration",
        "steps": "steps declaration",
        "destroy": "destroy kernel",
        "generate step": "generation kernel (generate x[t-1])",
        "generate start": "generation start (generate x[T])",
    }.get(key, key.replace("x[", "kernel x[", 1) if key.startswith(LEVEL_KEYS) else key)


def collect(model: ast.Model, parent: ModelIR | None, source: str) -> dict[str, ast.Statement]:
    statements: dict[str, ast.Statement] = {}
    ancestors = []  # parent, grandparent, …: each adds to (or replaces) what came before
    while parent is not None:
        ancestors.append(parent)
        parent = parent.parent
    for ancestor in reversed(ancestors):
        for statement in ancestor.syntax.statements:
            statements[_key(statement)] = statement
    parent = ancestors[0] if ancestors else None
    own: dict[str, ast.Statement] = {}
    for statement in model.statements:
        key = _key(statement)
        if key in own:
            raise DtgNameError(
                f"{describe(key)} given twice"
                if " " not in key or key.startswith("generate")
                else f"{key.split()[0]} '{key.split()[1]}' is defined twice",
                statement.span,
                source,
                related=[(own[key].span, "first given here")],
            )
        if parent is not None and key in statements and key not in _CHILD_MAY_REPLACE:
            raise DtgCheckError(
                f"model '{model.name}' cannot replace the {describe(key)} of its parent "
                f"'{parent.name}'",
                statement.span,
                source,
                hints=[
                    "a child model inherits every statement of its parent and may add a reward, "
                    "schedules and nets, and replace the objective and the train options"
                ],
            )
        own[key] = statement
    statements.update(own)
    return statements

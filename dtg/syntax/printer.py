"""Print an AST back as canonical dtg source.

``parse(to_source(tree)) == tree`` for every tree the parser makes (the round-trip test). The
printer puts parentheses only where precedence needs them.
"""

from __future__ import annotations

from . import ast

__all__ = [
    "PRECEDENCE",
    "ATOM",
    "strength",
    "to_source",
    "expr_to_source",
    "index_to_source",
    "brief",
    "statement_to_source",
    "options_to_source",
]

# Binding strength of each operator (higher binds tighter). Unary minus sits between * and ^.
PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, "neg": 3, "^": 4}
ATOM = 5


def strength(node: ast.Expr) -> int:
    """:returns: how tightly ``node`` binds (:data:`PRECEDENCE`; :data:`ATOM` for an atom)."""
    if isinstance(node, ast.Binary):
        return PRECEDENCE[node.op]
    if isinstance(node, ast.Unary):
        return PRECEDENCE["neg"]
    return ATOM


def _wrap(node: ast.Expr, needed: int) -> str:
    text = expr_to_source(node)
    return f"({text})" if strength(node) < needed else text


def _args(args: tuple, kwargs: tuple) -> str:
    parts = [expr_to_source(a) for a in args]
    parts += [f"{k.name} = {expr_to_source(k.value)}" for k in kwargs]
    return ", ".join(parts)


def expr_to_source(node: ast.Expr | ast.Slice) -> str:
    """One expression as text."""
    if isinstance(node, ast.Number):
        return node.text or repr(node.value)
    if isinstance(node, ast.String):
        escaped = node.value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Unary):
        # The operand of unary minus may be a power or another unary, never a product.
        return node.op + _wrap(node.operand, PRECEDENCE["neg"])
    if isinstance(node, ast.Binary):
        level = PRECEDENCE[node.op]
        if node.op == "^":
            # Right-associative; the left operand must be a postfix expression (an atom).
            return f"{_wrap(node.left, ATOM)}^{_wrap(node.right, PRECEDENCE['neg'])}"
        # Left-associative: the right operand needs parentheses at equal strength. A chain
        # a + b + c + … is printed along its left spine in a loop, not by recursion.
        spine = [node]
        while isinstance(spine[-1].left, ast.Binary) and strength(spine[-1].left) == level:
            spine.append(spine[-1].left)
        text = _wrap(spine[-1].left, level)
        for item in reversed(spine):
            text = f"{text} {item.op} {_wrap(item.right, level + 1)}"
        return text
    if isinstance(node, ast.Call):
        return f"{node.func}({_args(node.args, node.kwargs)})"
    if isinstance(node, ast.Subscript):
        indices = ", ".join(index_to_source(i) for i in node.indices)
        return f"{_wrap(node.base, ATOM)}[{indices}]"
    if isinstance(node, ast.Slice):
        start = expr_to_source(node.start) if node.start is not None else ""
        stop = expr_to_source(node.stop) if node.stop is not None else ""
        return f"{start}:{stop}"
    if isinstance(node, ast.Vector):
        return "[" + ", ".join(expr_to_source(i) for i in node.items) + "]"
    raise TypeError(f"not an expression: {node!r}")


def _tight(node: ast.Expr | ast.Slice) -> bool:
    return isinstance(node, ast.Binary) and node.op in "+-" and strength(node.right) == ATOM


def index_to_source(node: ast.Expr | ast.Slice) -> str:
    """A level index as people write it, tight: ``t-1``, ``T``, ``t+1`` (``x[t-1]``).

    :param node: the index expression.
    :returns: its text.
    """
    spine = []
    while _tight(node):
        spine.append(node)
        node = node.left
    text = expr_to_source(node)
    for item in reversed(spine):
        text = f"{text}{item.op}{expr_to_source(item.right)}"
    return text


def brief(text: str, limit: int = 60) -> str:
    """``text`` cut to about ``limit`` characters with "…", for quoting source in a message.

    :param text: printed source.
    :param limit: the most characters kept.
    :returns: the text, or its start and "…".
    """
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _space(node: ast.SpaceType) -> str:
    if isinstance(node, ast.RealSpace):
        return "real" + (f"[{', '.join(map(str, node.shape))}]" if node.shape else "")
    if isinstance(node, ast.TokenSpace):
        return f"token({node.vocab})[{', '.join(map(str, node.shape))}]"
    return "time"


def _level(node: ast.Level) -> str:
    return f"{node.message}[{index_to_source(node.index)}]"


def _kernel(node: ast.Kernel) -> str:
    return ("~ " if node.stochastic else "= ") + expr_to_source(node.body)


def options_to_source(options: tuple[ast.Option, ...]) -> str:
    """A block of options, ``{ steps = 2000, lr = 1e-3 }`` (a ``train`` block, a reward's).

    :param options: the options.
    :returns: the braces and the options inside them, on one line.
    """
    inside = ", ".join(f"{o.name} = {expr_to_source(o.value)}" for o in options)
    return f"{{ {inside} }}"


def statement_to_source(node: ast.Statement) -> str:
    """One statement on one line (a ``train`` block on one line too)."""
    if isinstance(node, ast.Data):
        source = f" ~ {expr_to_source(node.source)}" if node.source is not None else ""
        return f"data {node.name} : {_space(node.space)}{source}"
    if isinstance(node, ast.SpaceDecl):
        return f"space {node.name} : {_space(node.space)}"
    if isinstance(node, ast.Steps):
        # A value held as 2^63 (see ast.Steps) prints as written.
        value = node.value if node.value < 2**63 or not node.text else node.text
        return f"steps {node.name} = {value}"
    if isinstance(node, ast.Schedule):
        return f"schedule {node.name}({', '.join(node.params)}) = {expr_to_source(node.body)}"
    if isinstance(node, ast.Net):
        inputs = ", ".join(_space(i) for i in node.inputs)
        return (
            f"net {node.name} : ({inputs}) -> {_space(node.output)} = {expr_to_source(node.arch)}"
        )
    if isinstance(node, ast.Destroy):
        return f"destroy {_level(node.level)} {_kernel(node.kernel)}"
    if isinstance(node, ast.Generate):
        return f"generate {_level(node.level)} {_kernel(node.kernel)}"
    if isinstance(node, ast.Reward):
        params = f"({', '.join(node.params)})" if node.params is not None else ""
        options = f" {options_to_source(node.options)}" if node.options else ""
        return f"reward {node.name}{params} = {expr_to_source(node.body)}{options}"
    if isinstance(node, ast.Objective):
        if node.args or node.kwargs:
            return f"objective {node.name}({_args(node.args, node.kwargs)})"
        return f"objective {node.name}"
    if isinstance(node, ast.Train):
        return f"train {options_to_source(node.options)}"
    raise TypeError(f"not a statement: {node!r}")


def to_source(node: ast.Module | ast.Model) -> str:
    """A whole module (or one model) as canonical text."""
    if isinstance(node, ast.Module):
        return "\n".join(to_source(m) for m in node.models)
    parent = f" extends {node.parent}" if node.parent else ""
    body = "".join(f"  {statement_to_source(s)}\n" for s in node.statements)
    return f"model {node.name}{parent} {{\n{body}}}\n"

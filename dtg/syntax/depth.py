"""How deep an expression nests, and how long its chains of operations run: one measure for the
parser's limits and for the checker's (where each schedule call counts as its inlined body).

Two numbers describe an expression's tree (:class:`Depth`):

* ``nesting`` — the levels of true nesting: parentheses that group, calls (two levels: the
  call and its arguments, as in the parser's tree), subscripts, vectors, unary minus, powers (``^`` is right-associative: ``a^b^c`` is ``a^(b^c)``, nested). A chain of
  left-associative operators of one precedence — ``a + b - c + …`` or ``a * b / c * …`` — is one
  level however many terms it has (sympy flattens it into one ``Add`` or ``Mul``);
* ``length`` — the depth of the tree itself, a chain of ``n`` terms counting ``n - 1`` levels:
  what a recursive walk of the tree (the torch closures evaluating it) costs in stack frames.

The walk is iterative, so measuring a tree of any depth is safe.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from . import ast

__all__ = ["Depth", "measure", "first_too_deep", "expressions", "CHAIN_GROUPS"]

#: Operators that chain without nesting: each group is left-associative at one precedence.
CHAIN_GROUPS = {"+": "sum", "-": "sum", "*": "product", "/": "product"}


@dataclass(frozen=True)
class Depth:
    """The size of an expression tree.

    :param nesting: levels of true nesting (a flat chain ``a + b + …`` counts one).
    :param length: the depth of the tree, chains counted term by term.
    """

    nesting: int
    length: int


def _children(node: object) -> tuple:
    if isinstance(node, ast.Binary):
        return (node.left, node.right)
    if isinstance(node, ast.Unary):
        return (node.operand,)
    if isinstance(node, ast.Call):
        return (*node.args, *(k.value for k in node.kwargs))
    if isinstance(node, ast.Subscript):
        return (node.base, *node.indices)
    if isinstance(node, ast.Slice):
        return tuple(i for i in (node.start, node.stop) if i is not None)
    if isinstance(node, ast.Vector):
        return node.items
    return ()


def _links_chain(parent: ast.Binary, left: object) -> bool:
    """Whether ``left`` (the left operand of ``parent``) continues the same flat chain."""
    group = CHAIN_GROUPS.get(parent.op)
    return group is not None and isinstance(left, ast.Binary) and CHAIN_GROUPS.get(left.op) == group


def _combine(node: object, sizes: list[Depth], inlined: Mapping[str, Depth]) -> Depth:
    if isinstance(node, ast.Binary):
        left, right = sizes
        nest_left = left.nesting if _links_chain(node, node.left) else left.nesting + 1
        return Depth(max(nest_left, right.nesting + 1), 1 + max(left.length, right.length))
    # A call with arguments is two levels, as in the parser's tree (the call and its argument
    # list): sympy writes most functions as several nodes (sigmoid is 1/(1 + exp(-x))).
    own = 2 if isinstance(node, ast.Call) and sizes else 1
    nesting = own + max((s.nesting for s in sizes), default=0)
    length = own + max((s.length for s in sizes), default=0)
    if isinstance(node, ast.Call) and node.func in inlined:
        # The call is replaced by the callee's body, its arguments in place of the parameters.
        body = inlined[node.func]
        nesting = body.nesting + nesting - own
        length = body.length + length - own
    return Depth(nesting, length)


def _walk(
    root: ast.Expr, inlined: Mapping[str, Depth], limit: Depth | None
) -> tuple[Depth, object | None]:
    """Post-order: each node's size from its children's. With ``limit``, stop at the first node
    (the innermost) whose size passes it and return it as the second value."""
    sizes: dict[int, Depth] = {}
    stack: list[tuple[object, bool]] = [(root, False)]
    while stack:
        node, ready = stack.pop()
        children = _children(node)
        if not ready and children:
            stack.append((node, True))
            stack.extend((child, False) for child in reversed(children))
            continue
        size = _combine(node, [sizes.pop(id(c)) for c in children], inlined)
        if limit is not None and (size.nesting > limit.nesting or size.length > limit.length):
            return size, node
        sizes[id(node)] = size
    return sizes[id(root)], None


def measure(root: ast.Expr, inlined: Mapping[str, Depth] | None = None) -> Depth:
    """The :class:`Depth` of ``root``.

    :param root: an expression.
    :param inlined: function name → the size of its body: a call of it counts as that body with
        the arguments in place of the parameters (schedules, as the backends inline them).
    :returns: its nesting and length.
    """
    return _walk(root, inlined or {}, None)[0]


def first_too_deep(
    root: ast.Expr, limit: Depth, inlined: Mapping[str, Depth] | None = None
) -> tuple[Depth, ast.Expr] | None:
    """The first node (the innermost, left to right) whose size passes ``limit``, with its size.

    :param root: an expression.
    :param limit: the largest nesting and length accepted.
    :param inlined: as for :func:`measure`.
    :returns: ``(size, node)``, or ``None`` when the whole expression is within the limit.
    """
    size, node = _walk(root, inlined or {}, limit)
    return None if node is None else (size, node)  # type: ignore[return-value]


def expressions(statement: ast.Node) -> Iterator[ast.Expr]:
    """The expressions written in one statement (level indices, kernels, bodies, options).

    :param statement: a statement of a model.
    :returns: its expressions' roots, in source order.
    """
    if isinstance(statement, ast.Data) and statement.source is not None:
        yield statement.source
    elif isinstance(statement, ast.Schedule):
        yield statement.body
    elif isinstance(statement, ast.Reward):
        yield statement.body
        yield from (o.value for o in statement.options)
    elif isinstance(statement, ast.Net):
        yield statement.arch
    elif isinstance(statement, (ast.Destroy, ast.Generate)):
        yield statement.level.index
        yield statement.kernel.body
    elif isinstance(statement, ast.Objective):
        yield from statement.args
        yield from (k.value for k in statement.kwargs)
    elif isinstance(statement, ast.Train):
        yield from (o.value for o in statement.options)

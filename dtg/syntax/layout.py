"""How ``dtg fmt`` prints statements: canonical spacing, the user's tight operators, aligned columns.

Everything is spaced as :mod:`dtg.syntax.printer` prints it, with two differences:

* an arithmetic operator written with no space on either side stays tight (``t/T``, ``pi/2``,
  ``abar(t-1)``); any other is written ``a + b``. ``^`` and unary minus are always tight, level
  indices always tight (``x[t-1]``), and a ``-`` before a unary minus is always spaced.
* statements of one group are aligned: in a run of ``destroy``/``generate`` statements the
  levels and the ``~``/``=`` line up (``destroy  x[t]   ~ …`` above ``generate x[t-1] ~ …``); in
  a run of ``net`` statements the ``:`` lines up. :func:`align_key` says which column a statement
  aligns; :mod:`dtg.fmt` decides the runs.
"""

from __future__ import annotations

from . import ast
from .printer import (
    ATOM,
    PRECEDENCE,
    expr_to_source,
    index_to_source,
    statement_to_source,
    strength,
)

__all__ = ["SourcePrinter", "align_key", "tail_expr"]


def align_key(stmt: ast.Statement) -> tuple[str, ...] | None:
    """The columns a statement aligns with its neighbours, or ``None``.

    :param stmt: a statement.
    :returns: ``("kernel", keyword, level)`` for ``destroy``/``generate``, ``("net", name)`` for
        ``net``, else ``None``.
    """
    if isinstance(stmt, ast.Destroy | ast.Generate):
        keyword = "destroy" if isinstance(stmt, ast.Destroy) else "generate"
        level = f"{stmt.level.message}[{index_to_source(stmt.level.index)}]"
        return ("kernel", keyword, level)
    if isinstance(stmt, ast.Net):
        return ("net", stmt.name)
    return None


def tail_expr(stmt: ast.Statement) -> ast.Expr | None:
    """The expression a statement ends with (where a long line may be broken), if any.

    :param stmt: a statement.
    :returns: the data source, the net's architecture, the kernel's body, the schedule's or
        reward's body (a reward without options), or an objective with options as a call;
        ``None`` otherwise.
    """
    if isinstance(stmt, ast.Data):
        return stmt.source
    if isinstance(stmt, ast.Net):
        return stmt.arch
    if isinstance(stmt, ast.Destroy | ast.Generate):
        return stmt.kernel.body
    if isinstance(stmt, ast.Reward) and stmt.options:
        return None  # the options follow the body: the line ends with "}"
    if isinstance(stmt, ast.Schedule | ast.Reward):
        return stmt.body
    if isinstance(stmt, ast.Objective) and (stmt.args or stmt.kwargs):
        return ast.Call(stmt.name, stmt.args, stmt.kwargs)
    return None


class SourcePrinter:
    """Prints the syntax tree of ``text``, reading the operators' spacing from the text.

    :param text: the source the tree was parsed from.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.starts = [0]
        for line in text.split("\n"):
            self.starts.append(self.starts[-1] + len(line) + 1)

    def _offset(self, line: int, column: int) -> int:
        return self.starts[line - 1] + column - 1

    def tight(self, node: ast.Binary) -> bool:
        """Whether the user wrote this operator with no space on either side.

        :param node: a binary operation with spans.
        :returns: ``True`` for ``t/T``; ``False`` for ``t / T``, ``t /T``, or no spans.
        """
        if node.op == "^":
            return True
        left, right = node.left.span, node.right.span  # type: ignore[attr-defined]
        if left.line < 1 or right.line < 1 or isinstance(node.right, ast.Unary):
            return False
        start, stop = (
            self._offset(left.end_line, left.end_column),
            self._offset(right.line, right.column),
        )
        at = start
        while at < stop and self.text[at] != node.op:  # skip ")" and "(" (and spaces)
            if self.text[at] == "#":
                return False
            at += 1
        if at >= stop or at == 0:
            return False
        return not self.text[at - 1].isspace() and not self.text[at + 1].isspace()

    def _wrap(self, node: ast.Expr, needed: int) -> str:
        text = self.expr(node)
        return f"({text})" if strength(node) < needed else text

    def args(self, args: tuple, kwargs: tuple) -> list[str]:
        """A call's arguments as text, keyword arguments ``name = value``.

        :param args: positional arguments.
        :param kwargs: keyword arguments.
        :returns: one text per argument.
        """
        parts = [self.expr(a) for a in args]
        return parts + [f"{k.name} = {self.expr(k.value)}" for k in kwargs]

    def spine(self, node: ast.Binary) -> tuple[str, list[tuple[str, str]]]:
        """A left-associative chain ``a + b - c`` as its first operand and ``(op, operand)``s.

        :param node: a binary operation other than ``^``.
        :returns: the first operand's text and each following operator with its operand's text.
        """
        level = PRECEDENCE[node.op]
        items = [node]
        while isinstance(items[-1].left, ast.Binary) and strength(items[-1].left) == level:
            items.append(items[-1].left)
        rest = [(item.op, self._wrap(item.right, level + 1)) for item in reversed(items)]
        return self._wrap(items[-1].left, level), rest

    def expr(self, node: ast.Expr | ast.Slice) -> str:
        """One expression as text (see the module's spacing rules).

        :param node: the expression.
        :returns: its text.
        """
        if isinstance(node, ast.Binary):
            if node.op == "^":
                return f"{self._wrap(node.left, ATOM)}^{self._wrap(node.right, 3)}"
            items: list[ast.Binary] = [node]
            while isinstance(items[-1].left, ast.Binary) and strength(items[-1].left) == strength(
                node
            ):
                items.append(items[-1].left)
            text, rest = self.spine(node)
            for item, (op, operand) in zip(reversed(items), rest, strict=True):
                text += (op if self.tight(item) else f" {op} ") + operand
            return text
        if isinstance(node, ast.Unary):
            return node.op + self._wrap(node.operand, PRECEDENCE["neg"])
        if isinstance(node, ast.Call):
            return f"{node.func}({', '.join(self.args(node.args, node.kwargs))})"
        if isinstance(node, ast.Subscript):
            indices = ", ".join(self.index(i) for i in node.indices)
            return f"{self._wrap(node.base, ATOM)}[{indices}]"
        if isinstance(node, ast.Slice):
            start = self.expr(node.start) if node.start is not None else ""
            stop = self.expr(node.stop) if node.stop is not None else ""
            return f"{start}:{stop}"
        if isinstance(node, ast.Vector):
            return "[" + ", ".join(self.expr(i) for i in node.items) + "]"
        return expr_to_source(node)  # numbers, strings, names

    def index(self, node: ast.Expr | ast.Slice) -> str:
        """An index inside ``[…]``: ``t-1`` tight, as the printer writes levels.

        :param node: the index.
        :returns: its text.
        """
        if isinstance(node, ast.Binary) and node.op in "+-":
            return index_to_source(node)
        return self.expr(node)

    def statement(self, stmt: ast.Statement, widths: tuple[int, ...] = ()) -> str:
        """One statement on one line, padded to the run's ``widths`` (see :func:`align_key`).

        :param stmt: any statement but ``train``.
        :param widths: the keyword and level widths of a kernel run, the name width of a net run.
        :returns: the text, without indent.
        """
        if isinstance(stmt, ast.Destroy | ast.Generate):
            _, keyword, level = align_key(stmt) or ("", "", "")
            if widths:
                keyword, level = keyword.ljust(widths[0]), level.ljust(widths[1])
            kernel = ("~ " if stmt.kernel.stochastic else "= ") + self.expr(stmt.kernel.body)
            return f"{keyword} {level} {kernel}"
        text = statement_to_source(stmt)
        if isinstance(stmt, ast.Reward) and stmt.options:
            head = text[: text.index(" = ") + 3]  # "reward NAME(params) = "
            options = ", ".join(f"{o.name} = {self.expr(o.value)}" for o in stmt.options)
            return f"{head}{self.expr(stmt.body)} {{ {options} }}"
        if isinstance(stmt, ast.Net) and widths:
            text = f"net {stmt.name.ljust(widths[0])}" + text[len(f"net {stmt.name}") :]
        if isinstance(stmt, ast.Objective):
            return text if (expr := tail_expr(stmt)) is None else f"objective {self.expr(expr)}"
        expr = tail_expr(stmt)
        if expr is None:
            return text
        canonical = expr_to_source(expr)
        assert text.endswith(canonical), (text, canonical)
        return text[: len(text) - len(canonical)] + self.expr(expr)

"""``dtg fmt``: rewrite dtg source in the canonical layout, keeping every comment.

The layout: one statement per line, indented two spaces inside a model, expressions spaced as
:func:`dtg.syntax.printer.statement_to_source` prints them, one blank line between models, and
the user's blank lines between groups of statements kept (a run of blank lines becomes one).
Nothing is aligned across lines.

Comments are kept by line: a comment on its own line stays before the statement (or the
closing ``}``) that follows it; a comment after a statement stays at the end of that statement's
line. A comment *inside* a multi-line statement moves to its own line just above the statement,
except inside a ``train { … }`` block, which is then printed one option per line so that each
comment stays next to its option.

A statement longer than :data:`LINE_LIMIT` whose tail is a call (``~ Normal(…)``, ``mlp(…)``,
``objective …(…)``) is broken after top-level commas of that call, continuation lines aligned
just inside its ``(``; a long ``train`` block is printed one option per line; anything else
stays on one long line. The layout depends only on the syntax tree and the comments, so
``format_source`` is idempotent, and ``parse(format_source(x)) == parse(x)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from .syntax import ast, parse
from .syntax.printer import expr_to_source, statement_to_source

__all__ = ["format_source", "find_comments", "Comment", "LINE_LIMIT"]

#: Lines longer than this are broken where the layout allows it.
LINE_LIMIT = 100
_INDENT = "  "


@dataclass(frozen=True)
class Comment:
    """A ``#`` comment: its offset in the text, 1-based line, and text (``#…``, right-stripped)."""

    offset: int
    line: int
    text: str


def find_comments(text: str) -> list[Comment]:
    """Every comment in ``text``, in order; a ``#`` inside a string is not a comment.

    :param text: dtg source.
    :returns: the comments.
    """
    comments: list[Comment] = []
    offset, line, in_string = 0, 1, False
    while offset < len(text):
        char = text[offset]
        if char == "\n":
            line, in_string = line + 1, False
        elif in_string and char == "\\":
            offset += 1
        elif char == '"':
            in_string = not in_string
        elif char == "#" and not in_string:
            end = text.find("\n", offset)
            end = len(text) if end < 0 else end
            comments.append(Comment(offset, line, text[offset:end].rstrip()))
            offset = end
            continue
        offset += 1
    return comments


@dataclass
class _Anchor:
    """A piece of code comments attach to: [start, end) offsets and its first and last lines."""

    start: int
    end: int
    line: int
    end_line: int
    leading: list[Comment] = field(default_factory=list)
    trailing: list[Comment] = field(default_factory=list)


class _Formatter:
    def __init__(self, text: str, module: ast.Module) -> None:
        self.text, self.module = text, module
        self.lines = text.split("\n")
        self.starts = [0]
        for line in self.lines:
            self.starts.append(self.starts[-1] + len(line) + 1)
        self.anchors: dict[tuple, _Anchor] = {}
        self.tail: list[Comment] = []
        self.out: list[str] = []
        self.last_line = 0  # last source line already written
        self.fresh = True  # no blank line before the next unit
        self.force_blank = False

    # ------------------------------------------------------------------ anchoring comments
    def _offset(self, line: int, column: int) -> int:
        return self.starts[line - 1] + column - 1

    def _line_of(self, offset: int) -> int:
        return self.text.count("\n", 0, offset) + 1

    def _add(self, key: tuple, start: int, end: int) -> None:
        self.anchors[key] = _Anchor(start, end, self._line_of(start), self._line_of(end - 1))

    def _brace_after(self, offset: int) -> int:
        """The offset just past the next ``{`` at or after ``offset``, skipping comments."""
        while self.text[offset] != "{":
            offset = self.text.index("\n", offset) if self.text[offset] == "#" else offset + 1
        return offset + 1

    def _span(self, node: ast.Node) -> tuple[int, int]:
        span = node.span  # type: ignore[attr-defined]
        return self._offset(span.line, span.column), self._offset(span.end_line, span.end_column)

    def build_anchors(self) -> None:
        for m, model in enumerate(self.module.models):
            start, end = self._span(model)
            after = model.parent_span if model.parent else model.name_span
            self._add(("head", m), start, self._brace_after(self._offset(after.line, after.column)))
            for s, stmt in enumerate(model.statements):
                first, last = self._span(stmt)
                if not isinstance(stmt, ast.Train):
                    self._add(("stmt", m, s), first, last)
                    continue
                self._add(("stmt", m, s), first, self._brace_after(first + len("train")))
                for o, option in enumerate(stmt.options):
                    self._add(("opt", m, s, o), *self._span(option))
                self._add(("tclose", m, s), last - 1, last)
            self._add(("close", m), end - 1, end)

    def attach(self, comments: list[Comment]) -> None:
        anchors = sorted(self.anchors.values(), key=lambda a: a.start)
        for comment in comments:
            inside = [a for a in anchors if a.start <= comment.offset < a.end]
            before = [a for a in anchors if a.end <= comment.offset]
            after = [a for a in anchors if a.start > comment.offset]
            if inside:
                inside[0].leading.append(comment)  # moved above the statement
            elif before and before[-1].end_line == comment.line:
                before[-1].trailing.append(comment)
            elif after:
                after[0].leading.append(comment)
            else:
                self.tail.append(comment)

    # ------------------------------------------------------------------ writing
    def _blank_between(self, first: int) -> bool:
        return any(not self.lines[i].strip() for i in range(self.last_line, first - 1))

    def unit(
        self, lines: list[str], first: int, last: int, trailing: Sequence[Comment] = ()
    ) -> None:
        """Write one unit (a comment or a piece of code) of source lines ``first..last``."""
        if self.force_blank or (not self.fresh and self._blank_between(first)):
            self.out.append("")
        lines = list(lines)
        if trailing:
            lines[-1] += "  " + "  ".join(c.text for c in trailing)
        self.out.extend(lines)
        self.last_line = max(self.last_line, last)
        self.fresh = self.force_blank = False

    def comments(self, comments: list[Comment], indent: str) -> None:
        for comment in comments:
            self.unit([indent + comment.text], comment.line, comment.line)

    def anchored(self, key: tuple, lines: list[str], indent: str, closing: bool = False) -> None:
        """Write an anchor's leading comments, its lines and its trailing comment."""
        anchor = self.anchors[key]
        self.comments(anchor.leading, indent)
        self.fresh = self.fresh or closing  # never a blank line just before a closing brace
        self.unit(lines, anchor.line, anchor.end_line, anchor.trailing)

    def render(self) -> str:
        for m, model in enumerate(self.module.models):
            parent = f" extends {model.parent}" if model.parent else ""
            self.anchored(("head", m), [f"model {model.name}{parent} {{"], "")
            self.fresh = True
            for s, stmt in enumerate(model.statements):
                if isinstance(stmt, ast.Train):
                    self.train(m, s, stmt)
                else:
                    self.anchored(("stmt", m, s), _statement_lines(stmt, _INDENT), _INDENT)
            self.anchored(("close", m), ["}"], _INDENT, closing=True)
            self.force_blank = True
        self.comments(self.tail, "")
        return "\n".join(self.out) + "\n"

    def train(self, m: int, s: int, stmt: ast.Train) -> None:
        options = [f"{o.name} = {expr_to_source(o.value)}" for o in stmt.options]
        head, close = self.anchors[("stmt", m, s)], self.anchors[("tclose", m, s)]
        inner = [self.anchors[("opt", m, s, o)] for o in range(len(options))]
        one_line = (
            f"{_INDENT}train {{ {', '.join(options)} }}" if options else f"{_INDENT}train {{}}"
        )
        has_comments = head.trailing or close.leading or any(a.leading or a.trailing for a in inner)
        if not has_comments and len(one_line) <= LINE_LIMIT:
            self.comments(head.leading, _INDENT)
            self.unit([one_line], head.line, close.end_line, close.trailing)
            return
        self.anchored(("stmt", m, s), [f"{_INDENT}train {{"], _INDENT)
        self.fresh = True
        for o, text in enumerate(options):
            self.anchored(("opt", m, s, o), [f"{_INDENT * 2}{text},"], _INDENT * 2)
        self.anchored(("tclose", m, s), [f"{_INDENT}}}"], _INDENT * 2, closing=True)


def _tail_call(stmt: ast.Statement) -> ast.Call | None:
    """The call a statement ends with, if any (where a long line may be broken)."""
    node: ast.Node | None = None
    if isinstance(stmt, ast.Data):
        node = stmt.source
    elif isinstance(stmt, ast.Net):
        node = stmt.arch
    elif isinstance(stmt, ast.Destroy | ast.Generate):
        node = stmt.kernel.body
    elif isinstance(stmt, ast.Schedule | ast.Reward):
        node = stmt.body
    elif isinstance(stmt, ast.Objective) and (stmt.args or stmt.kwargs):
        node = ast.Call(stmt.name, stmt.args, stmt.kwargs)
    return node if isinstance(node, ast.Call) else None


def _statement_lines(stmt: ast.Statement, indent: str) -> list[str]:
    """One statement as lines: one line, or a long tail call broken after top-level commas."""
    line = indent + statement_to_source(stmt)
    call = _tail_call(stmt)
    parts = [expr_to_source(a) for a in call.args] if call else []
    parts += [f"{k.name} = {expr_to_source(k.value)}" for k in call.kwargs] if call else []
    if len(line) <= LINE_LIMIT or len(parts) < 2:
        return [line]
    call_text = f"{call.func}({', '.join(parts)})"
    assert line.endswith(call_text), (line, call_text)
    current = line[: len(line) - len(call_text)] + call.func + "("
    lines: list[str] = []
    column = len(current)
    if column > LINE_LIMIT // 2:  # far right: break after the '(' too, indent the arguments
        lines, current, column = [current], " " * (len(indent) + 4), len(indent) + 4
    for i, part in enumerate(parts):
        piece = part + ("," if i < len(parts) - 1 else ")")
        if i == 0:
            current += piece
        elif len(current) + 1 + len(piece) <= LINE_LIMIT:
            current += " " + piece
        else:
            lines.append(current)
            current = " " * column + piece
    return lines + [current]


def format_source(text: str, file: str = "<string>") -> str:
    """Format dtg source text in the canonical layout, keeping comments.

    :param text: the source.
    :param file: the file name shown in syntax errors.
    :returns: the formatted text (ends with one newline).
    :raises DtgError: when the text does not parse (the parser's located error).
    """
    module = parse(text, file)
    formatter = _Formatter(text, module)
    formatter.build_anchors()
    formatter.attach(find_comments(text))
    return formatter.render()

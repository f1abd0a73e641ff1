"""``dtg fmt``: rewrite dtg source in the canonical layout, keeping every comment.

The layout: one statement per line, indented two spaces inside a model, one blank line between
models, and the user's blank lines between groups of statements kept (a run of blank lines
becomes one). Expressions are spaced as :mod:`dtg.syntax.layout` prints them: as
:func:`dtg.syntax.printer.statement_to_source` does, except that an operator the user wrote
tight (``t/T``, ``abar(t-1)``) stays tight.

Columns are aligned as the docs and examples write them. In a run of ``destroy``/``generate``
statements (consecutive statements, no blank line between; comment lines do not break a run) the
keywords are padded to the longest and the levels too, so the ``~``/``=`` line up::

    destroy  x[t]   ~ Normal(…)
    generate x[T]   ~ Normal(0, 1)
    generate x[t-1] ~ Guess(x[t], eps)

In a run of ``net`` statements the names are padded so the ``:`` line up. Comments that end
consecutive lines of the same indent start in one column, two spaces after the longest line.

Comments are kept by line: a comment on its own line stays before the statement (or the
closing ``}``) that follows it; a comment after a statement stays at the end of that statement's
line. A comment *inside* a multi-line statement moves to its own line just above the statement,
except inside a ``train { … }`` block, which is then printed one option per line so that each
comment stays next to its option.

A statement longer than :data:`LINE_LIMIT` whose tail is a call (``~ Normal(…)``, ``mlp(…)``,
``objective …(…)``) is broken after top-level commas of that call, continuation lines aligned
just inside its ``(`` (or indented four spaces when the ``(`` is far right); one whose tail is a
chain ``a + b - c`` (or ``a * b / c``) is broken before the chain's operators, continuation lines
indented four spaces; a long ``train`` block has its options filled on lines of their own
between the braces; anything else stays on one long line. The layout depends only on the syntax
tree, the operators' spacing and the comments, so ``format_source`` is idempotent, and
``parse(format_source(x)) == parse(x)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from .syntax import ast, parse
from .syntax.layout import SourcePrinter, align_key, tail_expr

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
        self.printer = SourcePrinter(text)
        self.widths: dict[tuple[int, int], tuple[int, ...]] = {}  # aligned columns by statement
        self.placed: dict[tuple[int, int], tuple[int, int]] = {}  # statement -> output lines
        self.commented: list[tuple[int, int]] = []  # (output line, code length) of end comments
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
            self.commented.append((len(self.out) + len(lines) - 1, len(lines[-1])))
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
        """The formatted text: written once to find the runs of aligned statements (which
        depend on where blank lines fall), then again with their columns padded."""
        self._write()
        self._align_runs()
        self._write()
        self._align_comments()
        return "\n".join(self.out) + "\n"

    def _write(self) -> None:
        self.out, self.commented, self.placed = [], [], {}
        self.last_line, self.fresh, self.force_blank = 0, True, False
        for m, model in enumerate(self.module.models):
            parent = f" extends {model.parent}" if model.parent else ""
            self.anchored(("head", m), [f"model {model.name}{parent} {{"], "")
            self.fresh = True
            for s, stmt in enumerate(model.statements):
                if isinstance(stmt, ast.Train):
                    self.train(m, s, stmt)
                    continue
                lines = _statement_lines(self.printer, stmt, _INDENT, self.widths.get((m, s)))
                self.anchored(("stmt", m, s), lines, _INDENT)
                self.placed[m, s] = (len(self.out) - len(lines), len(self.out))  # its code
            self.anchored(("close", m), ["}"], _INDENT, closing=True)
            self.force_blank = True
        self.comments(self.tail, "")

    def _align_runs(self) -> None:
        """Pad each run of ``destroy``/``generate`` (or ``net``) statements to common columns."""
        for m, model in enumerate(self.module.models):
            runs: list[list[int]] = []
            for s, stmt in enumerate(model.statements):
                key = align_key(stmt)
                previous = align_key(model.statements[s - 1]) if s else None
                joined = (
                    key is not None
                    and previous is not None
                    and key[0] == previous[0]
                    and "" not in self.out[self.placed[m, s - 1][1] : self.placed[m, s][0]]
                )
                if joined:
                    runs[-1].append(s)
                elif key is not None:
                    runs.append([s])
            for run in runs:
                keys = [align_key(model.statements[s]) or () for s in run]
                widths = tuple(max(len(k[i]) for k in keys) for i in range(1, len(keys[0])))
                for s in run:
                    self.widths[m, s] = widths

    def _align_comments(self) -> None:
        """Start end-of-line comments of consecutive lines with the same indent in one column."""
        groups: list[list[tuple[int, int]]] = []
        for index, length in self.commented:
            indent = len(self.out[index]) - len(self.out[index].lstrip())
            if groups:
                last, _ = groups[-1][-1]
                if last == index - 1 and indent == len(self.out[last]) - len(
                    self.out[last].lstrip()
                ):
                    groups[-1].append((index, length))
                    continue
            groups.append([(index, length)])
        for group in groups:
            column = max(length for _, length in group) + 2
            for index, length in group:
                code, comment = self.out[index][:length], self.out[index][length:].lstrip()
                self.out[index] = code.ljust(column) + comment

    def train(self, m: int, s: int, stmt: ast.Train) -> None:
        options = [f"{o.name} = {self.printer.expr(o.value)}" for o in stmt.options]
        head, close = self.anchors[("stmt", m, s)], self.anchors[("tclose", m, s)]
        inner = [self.anchors[("opt", m, s, o)] for o in range(len(options))]
        one_line = (
            f"{_INDENT}train {{ {', '.join(options)} }}" if options else f"{_INDENT}train {{}}"
        )
        has_comments = head.trailing or close.leading or any(a.leading or a.trailing for a in inner)
        if not has_comments:  # one line, or the options filled between the braces
            lines = [one_line]
            if len(one_line) > LINE_LIMIT:
                pieces = [f"{text}," for text in options[:-1]] + options[-1:]
                body = _fill(_INDENT * 2, pieces, hanging=len(_INDENT * 2))
                lines = [f"{_INDENT}train {{", *body, f"{_INDENT}}}"]
            self.comments(head.leading, _INDENT)
            self.unit(lines, head.line, close.end_line, close.trailing)
            return
        self.anchored(("stmt", m, s), [f"{_INDENT}train {{"], _INDENT)
        self.fresh = True
        for o, text in enumerate(options):
            self.anchored(("opt", m, s, o), [f"{_INDENT * 2}{text},"], _INDENT * 2)
        self.anchored(("tclose", m, s), [f"{_INDENT}}}"], _INDENT * 2, closing=True)


def _statement_lines(
    printer: SourcePrinter,
    stmt: ast.Statement,
    indent: str,
    widths: tuple[int, ...] | None = None,
) -> list[str]:
    """One statement as lines: one line, or a long tail broken (see the module's docstring)."""
    line = indent + printer.statement(stmt, widths or ())
    tail = tail_expr(stmt)
    if len(line) <= LINE_LIMIT or tail is None:
        return [line]
    if isinstance(tail, ast.Call):
        parts = printer.args(tail.args, tail.kwargs)
        if len(parts) < 2:
            return [line]
        call_text = f"{tail.func}({', '.join(parts)})"
        closing = ")"
    elif isinstance(tail, ast.Binary) and tail.op != "^":
        first, rest = printer.spine(tail)
        parts = [first] + [f"{op} {operand}" for op, operand in rest]
        call_text = printer.expr(tail)
        closing = ""
    else:
        return [line]
    assert line.endswith(call_text), (line, call_text)
    head = line[: len(line) - len(call_text)]
    if closing:
        return _fill(head + tail.func + "(", [p + "," for p in parts[:-1]] + [parts[-1] + ")"])
    return _fill(head, parts, hanging=len(indent) + 4)


def _fill(head: str, pieces: list[str], hanging: int | None = None) -> list[str]:
    """``pieces`` after ``head``, as many a line as fit, a space apart.

    Continuation lines are indented ``hanging`` spaces when given (an operator chain), else
    aligned just after ``head`` (a call's ``(``); when ``head`` ends far right, the call's
    arguments start on their own line, indented four spaces more than the statement.
    """
    lines: list[str] = []
    current, column = head, hanging if hanging is not None else len(head)
    if hanging is None and column > LINE_LIMIT // 2:
        indent = len(head) - len(head.lstrip())
        lines, current, column = [head], " " * (indent + 4), indent + 4
    start = True
    for piece in pieces:
        if start:
            current += piece
            start = False
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

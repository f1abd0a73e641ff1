"""User-facing errors and the source-excerpt formatter.

Every mistake a user can make in a ``.dtg`` file, a data file or on the command line is a
:class:`DtgError`. Its :meth:`~DtgError.format` output follows compilers such as stanc3 and rustc::

    examples/bad.dtg:3:19: error: unknown name 'sqr'
       |
     3 |   schedule a(t) = sqr(t)
       |                   ^^^
       = did you mean 'sqrt'?

A Python traceback is never the answer to a user mistake: the CLI catches :class:`DtgError`,
prints :meth:`~DtgError.format` and exits with status 1.
"""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = [
    "Span",
    "DtgError",
    "DtgSyntaxError",
    "DtgCheckError",
    "DtgNameError",
    "DtgTypeError",
    "DtgLevelError",
    "DtgRangeError",
    "DtgObjectiveError",
    "DtgDataError",
    "DtgRuntimeError",
    "DtgOutputError",
    "output_error",
    "did_you_mean",
    "plural",
]


@dataclass(frozen=True)
class Span:
    """A region of a source file. Lines and columns are 1-based; ``end_column`` is exclusive.

    :param file: the file name as the user gave it (``"<string>"`` for text).
    :param line: first line.
    :param column: first column.
    :param end_line: last line.
    :param end_column: column one past the last character on ``end_line``.
    """

    file: str
    line: int
    column: int
    end_line: int
    end_column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass
class DtgError(Exception):
    """Base of every user-facing error.

    :param message: one line saying what is wrong.
    :param span: where in the source, when known.
    :param source: the full source text, for the excerpt (optional).
    :param hints: lines printed after the excerpt (``= hint``), e.g. "did you mean 'sqrt'?".
    :param related: other places worth showing (e.g. the first definition of a duplicate),
        each a ``(span, note)`` pair.
    """

    message: str
    span: Span | None = None
    source: str | None = None
    hints: list[str] = field(default_factory=list)
    related: list[tuple[Span, str]] = field(default_factory=list)

    kind = "error"

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.format()

    def with_source(self, source: str) -> DtgError:
        """Attach the source text (for the excerpt) if none is attached yet; returns ``self``."""
        if self.source is None:
            self.source = source
        return self

    def format(self) -> str:
        """The full message: location, excerpt with caret, hints, related places."""
        where = f"{self.span}: " if self.span is not None else ""
        lines = [f"{where}error: {self.message}"]
        if self.span is not None and self.source is not None:
            lines.extend(excerpt(self.source, self.span))
        for related_span, note in self.related:
            lines.append(f"{related_span}: note: {note}")
            if self.source is not None and related_span.file == self.span_file():
                lines.extend(excerpt(self.source, related_span))
        for hint in self.hints:
            lines.append(f"  = {hint}")
        return "\n".join(lines)

    def span_file(self) -> str | None:
        return self.span.file if self.span is not None else None


class DtgSyntaxError(DtgError):
    """The text is not in the grammar (or not valid UTF-8, or nested too deeply)."""


class DtgCheckError(DtgError):
    """Base of the checker's errors: the text parses but does not make a valid model."""


class DtgNameError(DtgCheckError):
    """An unknown or duplicated name."""


class DtgTypeError(DtgCheckError):
    """A space or shape mismatch, or a value of the wrong kind."""


class DtgLevelError(DtgCheckError):
    """A level index that breaks the Markov structure (``destroy x[t]`` reading ``x[t+1]`` …)."""


class DtgRangeError(DtgCheckError):
    """A schedule or kernel parameter out of its valid range on some level."""


class DtgObjectiveError(DtgCheckError):
    """An objective that does not fit the model's kernels."""


class DtgDataError(DtgError):
    """A data file or data source that does not fit the declared space."""


class DtgRuntimeError(DtgError):
    """A failure while training or sampling that the user can act on (NaN, missing checkpoint…)."""


class DtgOutputError(DtgError):
    """A file dtg was asked to write cannot be written (read-only folder, full disk, a link …)."""


def output_error(path: object, reason: OSError | str) -> DtgOutputError:
    """The one error for an output that cannot be written: it names the path and the OS reason.

    :param path: the file or folder dtg tried to write.
    :param reason: the :class:`OSError` met (its ``strerror`` is shown), or a sentence.
    :returns: the error, for the caller to raise (``from None``: the OS reason is in the text).
    """
    if isinstance(reason, OSError):
        reason = reason.strerror or str(reason)
    return DtgOutputError(f"cannot write {path}: {reason}")


#: The widest excerpt line, in terminal columns; longer lines are shown as a window around
#: the offending text, cut with "…".
EXCERPT_WIDTH = 200
#: When a line is windowed, how many columns of it are shown before the offending text.
_WINDOW_LEAD = 60
_TAB = 4
_CUT = "… "
#: The most characters of one line an excerpt measures (around the span's start).
_SLICE = 4 * EXCERPT_WIDTH


def _cell(char: str, column: int) -> tuple[str, int]:
    """How one character is shown at display ``column``: its text and its width in columns.

    Tabs go to the next multiple of 4; control characters are shown as their Unicode control
    picture (U+2400 …) and other invisible format characters (bidirectional overrides …) as
    U+FFFD, so an excerpt never sends a control sequence to the terminal; East Asian wide
    characters take two columns and combining marks none.
    """
    if char == "\t":
        width = _TAB - column % _TAB
        return " " * width, width
    code = ord(char)
    if code < 0x20:
        return chr(0x2400 + code), 1
    if code == 0x7F:
        return "\u2421", 1
    category = unicodedata.category(char)
    if category in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
        return "\ufffd", 1
    if category in ("Mn", "Me"):
        return char, 0
    return char, 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def _cells(line: str) -> list[tuple[int, str, int]]:
    """Each character of ``line`` as ``(display column, text, width)``."""
    cells = []
    column = 0
    for char in line:
        text, width = _cell(char, column)
        cells.append((column, text, width))
        column += width
    return cells


def _column_of(cells: list[tuple[int, str, int]], index: int) -> int:
    """The display column where character ``index`` (0-based) starts; past the end, one
    column per missing character."""
    if index < len(cells):
        return cells[index][0]
    end = cells[-1][0] + cells[-1][2] if cells else 0
    return end + index - len(cells)


def _shown(cells: list[tuple[int, str, int]], window: int, left: bool, right: bool) -> str:
    """The characters of one line inside ``[window, window + EXCERPT_WIDTH)`` display columns,
    with cut marks where the line goes on (``left``/``right``: it goes on beyond ``cells``)."""
    parts = [_CUT] if window > 0 or left else []
    position = window
    for column, text, width in cells:
        if column < window:
            continue
        if column + width > window + EXCERPT_WIDTH:
            right = True
            break
        parts.append(" " * (column - position) + text)
        position = column + width
    if right:
        parts.append(" …")
    return "".join(parts)


def _view(line: str, offset: int) -> tuple[list[tuple[int, str, int]], bool, bool]:
    """The cells of the characters of ``line`` from ``offset`` on, as many as an excerpt can
    show (a line of megabytes is measured no further), and whether the line goes on to the
    left and to the right."""
    end = offset + _SLICE
    return _cells(line[offset:end]), offset > 0, len(line) > end


def excerpt(source: str, span: Span, context: int = 1) -> list[str]:
    """Source lines around ``span`` with a caret line under the offending columns.

    A line wider than :data:`EXCERPT_WIDTH` columns is shown as a window that contains the
    start of the span (the same window on every line of the span, so carets stay aligned;
    context lines are shown from their start); tabs, wide characters and control characters
    are measured as a terminal shows them.

    :param source: the whole file.
    :param span: the region to underline.
    :param context: how many lines to show before the first line of the span.
    :returns: formatted lines (no trailing newline).
    """
    # A CRLF file's "\r" ends its line: it is not shown.
    all_lines = [line.removesuffix("\r") for line in source.split("\n")]
    if span.line > len(all_lines) or span.line < 1:
        return []
    first = max(1, span.line - context)
    last = min(len(all_lines), max(span.end_line, span.line))
    last = min(last, span.line + 3)  # a long span shows its first lines only
    gutter = len(str(last))
    # Characters, then display columns, are counted from ``offset``: far enough before the span
    # for the window, and near enough that a line of megabytes costs no more than a short one.
    offset = max(0, span.column - 1 - _SLICE // 2)
    first_cells, left, _ = _view(all_lines[span.line - 1], offset)
    lead = _column_of(first_cells, span.column - 1 - offset)
    line_width = _column_of(first_cells, len(first_cells))
    window = 0
    if left or (
        max(line_width, lead + 1) > EXCERPT_WIDTH and lead + 20 > EXCERPT_WIDTH - len(_CUT)
    ):
        window = max(0, lead - _WINDOW_LEAD)
        # Start on a character boundary at or after that column.
        window = next((c for c, _, _ in first_cells if c >= window), lead)
    indent = len(_CUT) if window > 0 or left else 0
    out = [" " * (gutter + 1) + "|"]
    for number in range(first, last + 1):
        line = all_lines[number - 1]
        if not span.line <= number <= span.end_line:  # context: shown from its start
            cells, _, right = _view(line, 0)
            out.append(f"{number:>{gutter}} | {_shown(cells, 0, False, right)}")
            continue
        cells, left, right = _view(line, offset)
        out.append(f"{number:>{gutter}} | {_shown(cells, window, left, right)}")
        start = span.column - 1 - offset if number == span.line else 0
        stop = span.end_column - 1 - offset if number == span.end_line else len(cells)
        start, stop = max(start, 0), max(stop, 0)
        begin = _column_of(cells, start)
        end = max(_column_of(cells, max(stop, start + 1)), begin + 1)
        begin, end = max(begin, window), min(end, window + EXCERPT_WIDTH)
        if end <= begin:
            continue
        carets = " " * (indent + begin - window) + "^" * (end - begin)
        out.append(" " * (gutter + 1) + "| " + carets)
    return out


def plural(count: int, word: str, words: str | None = None) -> str:
    """``count`` and the noun, singular or plural: ``1 index``, ``2 indices``, ``0 arguments``.

    :param count: how many.
    :param word: the singular.
    :param words: the plural (default: ``word + "s"``).
    :returns: the count and the noun, for a message.
    """
    return f"{count:,} {word if count == 1 else words or word + 's'}"


def did_you_mean(name: str, candidates: Iterable[str], n: int = 3) -> str | None:
    """A "did you mean" hint for ``name`` among ``candidates``, or ``None`` when nothing is close.

    :param name: the unknown name.
    :param candidates: the valid names in scope.
    :param n: at most this many suggestions.
    """
    pool = sorted(set(candidates))
    close = difflib.get_close_matches(name, pool, n=n, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in pool}
        if name.lower() in lowered:
            close = [lowered[name.lower()]]
    if not close:
        return None
    if len(close) == 1:
        return f"did you mean '{close[0]}'?"
    return "did you mean " + ", ".join(f"'{c}'" for c in close[:-1]) + f" or '{close[-1]}'?"

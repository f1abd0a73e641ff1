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


def _display_width(text: str) -> int:
    return len(text.expandtabs(4))


def excerpt(source: str, span: Span, context: int = 1) -> list[str]:
    """Source lines around ``span`` with a caret line under the offending columns.

    :param source: the whole file.
    :param span: the region to underline.
    :param context: how many lines to show before the first line of the span.
    :returns: formatted lines (no trailing newline).
    """
    all_lines = source.split("\n")
    first = max(1, span.line - context)
    last = min(len(all_lines), span.end_line if span.end_line >= span.line else span.line)
    last = min(last, span.line + 3)  # a long span shows its first lines only
    if span.line > len(all_lines):
        return []
    gutter = len(str(last))
    out = [" " * (gutter + 1) + "|"]
    for number in range(first, last + 1):
        text = all_lines[number - 1]
        if len(text) > 200:
            text = text[:200] + " …"
        out.append(f"{number:>{gutter}} | {text.expandtabs(4)}")
        if span.line <= number <= span.end_line:
            line_text = all_lines[number - 1]
            start = span.column if number == span.line else 1
            stop = span.end_column if number == span.end_line else len(line_text) + 1
            stop = max(stop, start + 1)
            lead = _display_width(line_text[: start - 1])
            width = max(1, _display_width(line_text[start - 1 : stop - 1]))
            if lead > 200:
                continue
            out.append(" " * (gutter + 1) + "| " + " " * lead + "^" * min(width, 200 - lead + 1))
    return out


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

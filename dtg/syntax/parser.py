"""The cached LALR parser and the translation of Lark's errors into :class:`DtgSyntaxError`.

The grammar file ships inside the package (``dtg/syntax/dtg.lark``; ``grammar/dtg.lark`` in the
repository is a link to it), so an installed dtg finds it without a checkout. The Lark parser is
built once per process from precomputed tables (:mod:`dtg.syntax.lalr`).
"""

from __future__ import annotations

import re

from lark.exceptions import (
    UnexpectedInput,
    VisitError,
)

from ..errors import DtgCheckError, DtgError, DtgSyntaxError, Span
from . import ast
from .depth import Depth, expressions, first_too_deep
from .lalr import grammar_text, lark_parser
from .messages import STATEMENT_KEYWORDS, translate
from .transform import ToAst

__all__ = [
    "grammar_text",
    "lark_parser",
    "parse",
    "depth_error",
    "MAX_DEPTH",
    "MAX_LENGTH",
    "MAX_TOKENS",
    "STATEMENT_KEYWORDS",
]

#: Deepest nesting of expressions accepted (see :mod:`dtg.syntax.depth`: a flat chain such as
#: ``a + b + c`` is one level). Deeper inputs (a machine-made file, an attack) get a located
#: error instead of exhausting Python's recursion limit or sympy in later stages.
MAX_DEPTH = 100
#: Longest chain of operations accepted (``t + t + …`` with this many ``+``): the torch
#: closures evaluate a chain recursively, one stack frame per operation.
MAX_LENGTH = 500
#: Most tokens accepted in one file (comments do not count): 500 times a large model.
MAX_TOKENS = 150_000


def parse(source: str | bytes, file: str = "<string>") -> ast.Module:
    """Parse dtg source text into an AST.

    :param source: the text (``bytes`` are decoded as UTF-8; invalid bytes are a located error).
    :param file: the file name shown in errors and kept in spans.
    :returns: the :class:`~dtg.syntax.ast.Module`.
    :raises DtgSyntaxError: for any text outside the grammar.
    """
    text = _decode(source, file) if isinstance(source, bytes) else source
    _check_characters(text, file)
    _check_size(text, file)
    parser = lark_parser()
    try:
        tree = parser.parse(text)
    except UnexpectedInput as error:
        raise translate(error, text, file) from None
    try:
        module = ToAst(file, text).transform(tree)
    except VisitError as error:
        if isinstance(error.orig_exc, DtgError):
            raise error.orig_exc from None
        raise
    _check_depth(module, text, file)
    if not module.models:
        what = "is empty" if not text.strip() else "has no model, only comments"
        raise DtgSyntaxError(
            f"the file {what}: expected at least one model",
            Span(file, 1, 1, 1, 1),
            text,
            hints=["a model starts with: model NAME { … }"],
        )
    return module


# ----------------------------------------------------------------------------- pre-checks


def _decode(data: bytes, file: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line_start = data.rfind(b"\n", 0, error.start) + 1
        line = data.count(b"\n", 0, error.start) + 1
        # The bytes before the first bad one are valid: the column counts their characters.
        column = len(data[line_start : error.start].decode("utf-8")) + 1
        raise DtgSyntaxError(
            f"the file is not valid UTF-8 text (byte 0x{data[error.start]:02x} at offset "
            f"{error.start})",
            Span(file, line, column, line, column + 1),
            # The excerpt shows each bad byte sequence as U+FFFD, one column like any character.
            data.decode("utf-8", errors="replace"),
            hints=["dtg source files are UTF-8 text; is this a binary file?"],
        ) from None


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
#: What counts as one token for :data:`MAX_TOKENS` (comments are matched to be skipped).
_TOKEN = re.compile(r'"(?:[^"\\\n]+|\\.)*"?|#[^\n]*|[A-Za-z_]\w*|\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\S')


def _position(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _check_characters(text: str, file: str) -> None:
    """Reject control characters early, with a clearer message than the lexer's."""
    found = _CONTROL.search(text)
    if found is None:
        return
    line, column = _position(text, found.start())
    raise DtgSyntaxError(
        f"control character U+{ord(found.group()):04X} in the source",
        Span(file, line, column, line, column + 1),
        text,
        hints=["dtg source files are plain text; is this a binary file?"],
    )


def _check_size(text: str, file: str) -> None:
    """Refuse more than :data:`MAX_TOKENS` tokens before parsing: the parser reads ~100k tokens
    a second, so a machine-made 10 MB file would take minutes. Counting stops at the limit."""
    count = 0
    for match in _TOKEN.finditer(text):
        if match.group().startswith("#"):
            continue
        count += 1
        if count > MAX_TOKENS:
            line, column = _position(text, match.start())
            raise DtgSyntaxError(
                f"the file has more than {MAX_TOKENS:,} tokens (names, numbers, symbols)",
                Span(file, line, column, line, column + len(match.group())),
                text,
                hints=["a model takes a few hundred; is this a generated or a wrong file?"],
            )


def _check_depth(module: ast.Module, text: str, file: str) -> None:
    """Refuse absurd nesting and absurdly long chains of operations (iteratively, before any
    recursive walk of the tree): a flat sum of many terms is long, not nested."""
    limit = Depth(MAX_DEPTH, MAX_LENGTH)
    for model in module.models:
        for statement in model.statements:
            for root in expressions(statement):
                found = first_too_deep(root, limit)
                if found is not None:
                    raise depth_error(*found, text, file, limit)


def depth_error(
    size: Depth,
    node: ast.Expr,
    text: str,
    file: str,
    limit: Depth | None = None,
    inlined: bool = False,
) -> DtgError:
    """The error for an expression past :data:`MAX_DEPTH` or :data:`MAX_LENGTH`.

    :param size: the size of ``node``.
    :param node: the first node past the limit.
    :param text: the source, for the excerpt.
    :param file: the file name (for a node without a span).
    :param limit: the limits passed (default: :data:`MAX_DEPTH` and :data:`MAX_LENGTH`).
    :param inlined: the size counts the schedules it calls, written out (the checker's check).
    :returns: the error to raise: a :class:`DtgSyntaxError`, or a :class:`DtgCheckError` when
        only the inlined schedules make the expression too large.
    """
    limit = limit or Depth(MAX_DEPTH, MAX_LENGTH)
    span = getattr(node, "span", None)
    if span is None or span.line == 0:
        span = Span(file, 1, 1, 1, 2)
    cls = DtgCheckError if inlined else DtgSyntaxError
    once = " once the schedules it calls are written out" if inlined else ""
    if size.nesting > limit.nesting:
        return cls(
            f"expression nested too deeply{once} (more than {limit.nesting} levels)",
            span,
            text,
            hints=["split it into schedules, or simplify it"] if not inlined else [],
        )
    return cls(
        f"expression too long{once}: more than {limit.length:,} operations in a chain "
        "(a + b + c + …)",
        span,
        text,
        hints=[]
        if inlined
        else ["split the chain into schedules, e.g. s1(t) = a + b + …; s2(t) = …; s1(t) + s2(t)"],
    )


# ----------------------------------------------------------------------------- error translation

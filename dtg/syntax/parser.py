"""The cached LALR parser and the translation of Lark's errors into :class:`DtgSyntaxError`.

The grammar file ships inside the package (``dtg/syntax/dtg.lark``; ``grammar/dtg.lark`` in the
repository is a link to it), so an installed dtg finds it without a checkout. The Lark parser is
built once per process from precomputed tables (:mod:`dtg.syntax.lalr`).
"""

from __future__ import annotations

import re
from typing import Any

from lark import Tree
from lark.exceptions import (
    UnexpectedInput,
    VisitError,
)

from ..errors import DtgError, DtgSyntaxError, Span
from . import ast
from .lalr import grammar_text, lark_parser
from .messages import STATEMENT_KEYWORDS, translate
from .transform import ToAst

__all__ = ["grammar_text", "lark_parser", "parse", "MAX_DEPTH", "MAX_TOKENS", "STATEMENT_KEYWORDS"]

#: Deepest nesting of expressions accepted. Deeper inputs (a machine-made file, an attack)
#: get a located error instead of exhausting Python's recursion limit in later stages.
MAX_DEPTH = 100
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
    _check_depth(tree, text, file)
    try:
        module = ToAst(file, text).transform(tree)
    except VisitError as error:
        if isinstance(error.orig_exc, DtgError):
            raise error.orig_exc from None
        raise
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
        before = data[: error.start]
        line = before.count(b"\n") + 1
        column = len(before) - (before.rfind(b"\n") + 1) + 1
        raise DtgSyntaxError(
            f"the file is not valid UTF-8 text (byte 0x{data[error.start]:02x} at offset "
            f"{error.start})",
            Span(file, line, column, line, column + 1),
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


def _check_depth(tree: Tree, text: str, file: str) -> None:
    """Iteratively measure the tree's depth; refuse absurd nesting before recursing on it."""
    stack: list[tuple[Any, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if not isinstance(node, Tree):
            continue
        if depth > MAX_DEPTH:
            meta = node.meta
            span = (
                Span(file, meta.line, meta.column, meta.line, meta.column + 1)
                if not meta.empty
                else None
            )
            raise DtgSyntaxError(
                f"expression nested too deeply (more than {MAX_DEPTH} levels)",
                span,
                text,
                hints=["split it into schedules, or simplify it"],
            )
        stack.extend((child, depth + 1) for child in node.children)


# ----------------------------------------------------------------------------- error translation



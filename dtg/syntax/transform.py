"""The Lark parse tree → AST transformer (python-hcl2 style: separate from the parser).

Each rule method receives the rule's ``meta`` (positions, thanks to ``propagate_positions``) and
its children, and returns a frozen :mod:`dtg.syntax.ast` node carrying a :class:`~dtg.errors.Span`.
"""

from __future__ import annotations

from typing import Any

from lark import Token, v_args
from lark.visitors import Transformer_NonRecursive

from ..errors import DtgNameError, DtgSyntaxError, Span
from ..names import RESERVED_PREFIX, is_reserved
from . import ast

__all__ = ["ToAst", "quote_number", "short_number"]


@v_args(meta=True)
class ToAst(Transformer_NonRecursive):
    """Build :class:`dtg.syntax.ast.Module` from a parse tree.

    :param file: the file name used in spans.
    :param source: the source text, attached to errors for their excerpt.
    """

    def __init__(self, file: str, source: str) -> None:
        super().__init__(visit_tokens=False)
        self.file = file
        self.source = source

    # ------------------------------------------------------------------ helpers
    def _span(self, meta: Any) -> Span:
        if getattr(meta, "empty", True):
            return Span(self.file, 0, 0, 0, 0)
        return Span(self.file, meta.line, meta.column, meta.end_line, meta.end_column)

    def _tok(self, token: Token) -> Span:
        return Span(self.file, token.line, token.column, token.end_line, token.end_column)

    def _int(self, token: Token, what: str, bounded: bool = True) -> int:
        """A whole number of the grammar (steps, a dimension, a vocabulary size).

        :param bounded: refuse a value of 2^63 or more here; otherwise (the steps, whose limit
            the checker gives) such a value is returned as 2^63, far past any limit.
        """
        text = str(token)
        if not text.isdigit():
            raise DtgSyntaxError(
                f"bad number {quote_number(text)}: {what} must be a whole number",
                self._tok(token),
                self.source,
                hints=[f"write it without a decimal point or exponent, e.g. {int(float(text))}"]
                if _finite(text)
                else [],
            )
        # Compared as text first: int() refuses strings of more than 4,300 digits.
        digits = text.lstrip("0") or "0"
        if len(digits) > len(_INT64_LIMIT) or int(digits) >= int(_INT64_LIMIT):
            if not bounded:
                return int(_INT64_LIMIT)
            raise DtgSyntaxError(
                f"bad number {quote_number(text)}: {what} must be a whole number below 2^63",
                self._tok(token),
                self.source,
            )
        value = int(digits)
        if value <= 0:
            raise DtgSyntaxError(
                f"bad number {quote_number(text)}: {what} must be positive",
                self._tok(token),
                self.source,
            )
        return value

    def _declared(self, token: Token, what: str) -> str:
        """The name a declaration gives, refused when it begins with ``__`` (the one check of
        declared names: models, messages, steps, schedules, nets, rewards and parameters)."""
        name = str(token)
        if is_reserved(name):
            raise DtgNameError(
                f"'{name}' cannot name {what}: names beginning with '{RESERVED_PREFIX}' are "
                "reserved",
                self._tok(token),
                self.source,
            )
        return name

    # ------------------------------------------------------------------ module and model
    def start(self, meta, children):
        return ast.Module(tuple(children), file=self.file, source=self.source)

    def model(self, meta, children):
        name, parent, *statements = children
        return ast.Model(
            self._declared(name, "a model"),
            str(parent) if parent is not None else None,
            tuple(statements),
            span=self._span(meta),
            name_span=self._tok(name),
            parent_span=self._tok(parent) if parent is not None else Span(self.file, 0, 0, 0, 0),
        )

    # ------------------------------------------------------------------ statements
    def data_stmt(self, meta, children):
        name, space, _tilde, source = children
        return ast.Data(self._declared(name, "the message"), space, source, span=self._span(meta))

    def space_stmt(self, meta, children):
        name, space = children
        return ast.SpaceDecl(self._declared(name, "the message"), space, span=self._span(meta))

    def steps_stmt(self, meta, children):
        name, value = children
        return ast.Steps(
            self._declared(name, "the number of steps"),
            self._int(value, "the number of steps", bounded=False),
            span=self._span(meta),
            text=str(value),
        )

    def schedule_stmt(self, meta, children):
        name, params, body = children
        return ast.Schedule(self._declared(name, "a schedule"), params, body, span=self._span(meta))

    def net_stmt(self, meta, children):
        name, *rest = children
        arch = rest[-1]
        output = rest[-2]
        inputs = tuple(t for t in rest[:-2] if t is not None)
        return ast.Net(self._declared(name, "a net"), inputs, output, arch, span=self._span(meta))

    def destroy_stmt(self, meta, children):
        level, kernel = children
        return ast.Destroy(level, kernel, span=self._span(meta))

    def generate_stmt(self, meta, children):
        level, kernel = children
        return ast.Generate(level, kernel, span=self._span(meta))

    def reward_stmt(self, meta, children):
        name, params, body, options = children
        return ast.Reward(
            self._declared(name, "a reward"),
            params,
            body,
            span=self._span(meta),
            options=options or (),
        )

    def reward_options(self, meta, children):
        return tuple(c for c in children if c is not None)

    def objective_stmt(self, meta, children):
        name, args = children
        positional, keywords = args if args is not None else ((), ())
        has_parens = self.source[meta.start_pos : meta.end_pos].rstrip().endswith(")")
        return ast.Objective(
            str(name),
            positional,
            keywords,
            has_parens=has_parens,
            span=self._span(meta),
            name_span=self._tok(name),
        )

    def train_stmt(self, meta, children):
        return ast.Train(tuple(c for c in children if c is not None), span=self._span(meta))

    def option(self, meta, children):
        name, value = children
        return ast.Option(str(name), value, span=self._span(meta))

    def params(self, meta, children):
        return tuple(self._declared(c, "a parameter") for c in children if c is not None)

    def level(self, meta, children):
        name, index = children
        return ast.Level(str(name), index, span=self._span(meta))

    def sample_kernel(self, meta, children):
        _tilde, body = children
        return ast.Kernel(True, body, span=self._span(meta))

    def assign_kernel(self, meta, children):
        (body,) = children
        return ast.Kernel(False, body, span=self._span(meta))

    # ------------------------------------------------------------------ spaces
    def shape(self, meta, children):
        return tuple(self._int(c, "a dimension") for c in children)

    def real_space(self, meta, children):
        (shape,) = children
        return ast.RealSpace(shape or (), span=self._span(meta))

    def token_space(self, meta, children):
        vocab, shape = children
        return ast.TokenSpace(self._int(vocab, "a vocabulary size"), shape, span=self._span(meta))

    def time_type(self, meta, children):
        return ast.TimeType(span=self._span(meta))

    # ------------------------------------------------------------------ expressions
    def _binary(op):  # noqa: N805 - a factory used in the class body
        def build(self, meta, children):
            left, right = children
            return ast.Binary(op, left, right, span=self._span(meta))

        return build

    add = _binary("+")
    sub = _binary("-")
    mul = _binary("*")
    div = _binary("/")
    pow = _binary("^")

    def neg(self, meta, children):
        return ast.Unary("-", children[0], span=self._span(meta))

    def pos(self, meta, children):
        return ast.Unary("+", children[0], span=self._span(meta))

    def number(self, meta, children):
        (token,) = children
        text = str(token)
        value = float(text)
        if value != value or value in (float("inf"), float("-inf")):
            raise DtgSyntaxError(
                f"bad number {quote_number(text)}: it overflows a 64-bit float",
                self._tok(token),
                self.source,
            )
        return ast.Number(value, text, span=self._tok(token))

    def string(self, meta, children):
        (token,) = children
        raw = str(token)[1:-1]
        value = raw.replace('\\"', '"').replace("\\\\", "\\")
        return ast.String(value, span=self._tok(token))

    def name(self, meta, children):
        (token,) = children
        return ast.Name(str(token), span=self._tok(token))

    def vector(self, meta, children):
        return ast.Vector(tuple(c for c in children if c is not None), span=self._span(meta))

    def subscript(self, meta, children):
        base, *indices = children
        return ast.Subscript(base, tuple(indices), span=self._span(meta))

    def slice(self, meta, children):
        start, stop = children
        return ast.Slice(start, stop, span=self._span(meta))

    def call(self, meta, children):
        name, args = children
        positional, keywords = args if args is not None else ((), ())
        return ast.Call(
            str(name), positional, keywords, span=self._span(meta), func_span=self._tok(name)
        )

    def args(self, meta, children):
        positional: list[ast.Expr] = []
        keywords: list[ast.Keyword] = []
        seen: dict[str, ast.Keyword] = {}
        for child in children:
            if isinstance(child, ast.Keyword):
                if child.name in seen:
                    raise DtgSyntaxError(
                        f"keyword argument '{child.name}' given twice",
                        child.span,
                        self.source,
                        related=[(seen[child.name].span, "first given here")],
                    )
                seen[child.name] = child
                keywords.append(child)
            else:
                if keywords:
                    raise DtgSyntaxError(
                        "positional argument after a keyword argument",
                        _node_span(child, self.file),
                        self.source,
                        hints=["put positional arguments first: f(a, b, name = c)"],
                    )
                positional.append(child)
        return tuple(positional), tuple(keywords)

    def keyword(self, meta, children):
        name, value = children
        return ast.Keyword(str(name), value, span=self._span(meta))


def _node_span(node: Any, file: str) -> Span:
    return getattr(node, "span", Span(file, 0, 0, 0, 0))


#: 2^63: whole numbers of the grammar (steps, dimensions, vocabularies) are 64-bit integers.
_INT64_LIMIT = str(2**63)
#: Numbers longer than this are quoted by their first digits and their length.
_QUOTE_CHARS = 30


def short_number(text: str) -> str:
    """A number as written, for a message; a very long one is cut, with its length.

    :param text: the number's text.
    :returns: ``12.5``, or ``99999999999999999999… (5,000 digits)``.
    """
    if len(text) <= _QUOTE_CHARS:
        return text
    unit = "digits" if text.isdigit() else "characters"
    return f"{text[:20]}… ({len(text):,} {unit})"


def quote_number(text: str) -> str:
    """:func:`short_number` in quotes: ``'12.5'``, ``'99999999999999999999…' (5,000 digits)``.

    :param text: the number's text.
    :returns: the quoted number.
    """
    if len(text) <= _QUOTE_CHARS:
        return f"'{text}'"
    head, _, length = short_number(text).partition(" ")
    return f"'{head}' {length}"


def _finite(text: str) -> bool:
    try:
        value = float(text)
    except ValueError:
        return False
    return value == value and abs(value) < 1e18

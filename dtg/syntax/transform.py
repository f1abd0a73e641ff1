"""The Lark parse tree → AST transformer (python-hcl2 style: separate from the parser).

Each rule method receives the rule's ``meta`` (positions, thanks to ``propagate_positions``) and
its children, and returns a frozen :mod:`dtg.syntax.ast` node carrying a :class:`~dtg.errors.Span`.
"""

from __future__ import annotations

from typing import Any

from lark import Token, Transformer, v_args

from ..errors import DtgSyntaxError, Span
from . import ast

__all__ = ["ToAst"]


@v_args(meta=True)
class ToAst(Transformer):
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

    def _int(self, token: Token, what: str) -> int:
        text = str(token)
        if not text.isdigit():
            raise DtgSyntaxError(
                f"bad number '{text}': {what} must be a whole number",
                self._tok(token),
                self.source,
                hints=[f"write it without a decimal point or exponent, e.g. {int(float(text))}"]
                if _finite(text)
                else [],
            )
        value = int(text)
        if value <= 0:
            raise DtgSyntaxError(
                f"bad number '{text}': {what} must be positive", self._tok(token), self.source
            )
        return value

    # ------------------------------------------------------------------ module and model
    def start(self, meta, children):
        return ast.Module(tuple(children), file=self.file, source=self.source)

    def model(self, meta, children):
        name, parent, *statements = children
        return ast.Model(
            str(name),
            str(parent) if parent is not None else None,
            tuple(statements),
            span=self._span(meta),
            name_span=self._tok(name),
            parent_span=self._tok(parent) if parent is not None else Span(self.file, 0, 0, 0, 0),
        )

    # ------------------------------------------------------------------ statements
    def data_stmt(self, meta, children):
        name, space, _tilde, source = children
        return ast.Data(str(name), space, source, span=self._span(meta))

    def space_stmt(self, meta, children):
        name, space = children
        return ast.SpaceDecl(str(name), space, span=self._span(meta))

    def steps_stmt(self, meta, children):
        name, value = children
        return ast.Steps(str(name), self._int(value, "the number of steps"), span=self._span(meta))

    def schedule_stmt(self, meta, children):
        name, params, body = children
        return ast.Schedule(str(name), params, body, span=self._span(meta))

    def net_stmt(self, meta, children):
        name, *rest = children
        arch = rest[-1]
        output = rest[-2]
        inputs = tuple(t for t in rest[:-2] if t is not None)
        return ast.Net(str(name), inputs, output, arch, span=self._span(meta))

    def destroy_stmt(self, meta, children):
        level, kernel = children
        return ast.Destroy(level, kernel, span=self._span(meta))

    def generate_stmt(self, meta, children):
        level, kernel = children
        return ast.Generate(level, kernel, span=self._span(meta))

    def reward_stmt(self, meta, children):
        name, params, body = children
        return ast.Reward(str(name), params, body, span=self._span(meta))

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
        return tuple(str(c) for c in children if c is not None)

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
                f"bad number '{text}': it overflows a 64-bit float", self._tok(token), self.source
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


def _finite(text: str) -> bool:
    try:
        value = float(text)
    except ValueError:
        return False
    return value == value and abs(value) < 1e18

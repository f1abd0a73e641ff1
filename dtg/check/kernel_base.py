"""What every kernel check shares: the model's context, located errors, argument binding and
the float64 tables of a kernel's parameters (the base of :class:`~dtg.check.kernels.KernelChecker`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import sympy as sp

from ..errors import (
    DtgCheckError,
    DtgLevelError,
    DtgRangeError,
    DtgTypeError,
    Span,
    did_you_mean,
    plural,
)
from ..ir import Space
from ..syntax import ast
from ..syntax.printer import brief, index_to_source
from . import symbolic
from .exprs import ExprChecker
from .scope import Scope
from .sympy_fold import SympyFold

__all__ = ["KernelBase", "T"]

T = symbolic.T_SYMBOL


class KernelBase:
    """The context of one model's kernel checks."""

    def __init__(
        self,
        model: ast.Model,
        statements: dict[str, Any],
        space: Space,
        steps: int,
        steps_name: str,
        message: str,
        builder: symbolic.SympyBuilder,
        scope: Callable[..., Scope],
        source: str,
        schedule_defs: dict[str, Any],
    ) -> None:
        self.model = model
        self.statements = statements
        self.space = space
        self.steps = steps
        self.steps_name = steps_name
        self.message = message
        self.builder = builder
        self.scope = scope
        self.source = source
        self.schedule_defs = schedule_defs  # the lowered schedules, for the sympy fold

    def sympy(self, expr: Any, levels: dict[str, sp.Symbol] | None = None) -> sp.Expr:
        """A lowered IR expression as sympy (``levels``: level key → the symbol it stands for)."""
        return SympyFold(self.steps, self.schedule_defs, levels).fold(expr)

    # ------------------------------------------------------------------ helpers
    def err(self, cls, message: str, span: Span, *hints: str):
        return cls(message, span, self.source, hints=list(hints))

    def _missing(self, what: str, example: str) -> DtgCheckError:
        return self.err(
            DtgCheckError,
            f"model '{self.model.name}' has no {what}",
            self.model.name_span,
            f"add: {example}",
        )

    def _lhs(self, statement, expected: sp.Expr, rule: str) -> None:
        level = statement.level
        if level.message != self.message:
            raise self.err(
                DtgLevelError,
                f"'{level.message}' is not the model's message '{self.message}'",
                level.span,
                f"write {self.message}[…]",
            )
        checker = ExprChecker(self.scope(), self.source)
        checker._check_index_names(level.index)
        index = self.builder.index(level.index)
        if sp.simplify(index - expected) != 0:
            shown = brief(index_to_source(level.index))
            raise self.err(DtgLevelError, f"{rule}, not {self.message}[{shown}]", level.span)

    def _call(self, kernel: ast.Kernel, allowed: tuple[str, ...], where: str) -> ast.Call:
        body = kernel.body
        if not isinstance(body, ast.Call) or body.func not in allowed:
            shown = body.func if isinstance(body, ast.Call) else "an expression"
            raise self.err(
                DtgTypeError,
                f"{where}: expected one of {', '.join(allowed)}, got {shown}",
                body.span,
            )
        return body

    def _args(self, call: ast.Call, names: tuple[str, ...], required: int) -> dict[str, ast.Expr]:
        """Bind a channel call's arguments to parameter names."""
        if len(call.args) > len(names):
            raise self.err(
                DtgTypeError,
                f"{call.func} takes at most {plural(len(names), 'argument')} ({', '.join(names)})",
                call.span,
            )
        bound = dict(zip(names, call.args, strict=False))
        for keyword in call.kwargs:
            if keyword.name not in names:
                hint = did_you_mean(keyword.name, names)
                raise self.err(
                    DtgTypeError,
                    f"{call.func} has no parameter '{keyword.name}'",
                    keyword.span,
                    hint or f"its parameters are: {', '.join(names)}",
                )
            if keyword.name in bound:
                raise self.err(
                    DtgTypeError, f"parameter '{keyword.name}' given twice", keyword.span
                )
            bound[keyword.name] = keyword.value
        for name in names[:required]:
            if name not in bound:
                raise self.err(
                    DtgTypeError,
                    f"{call.func} needs its parameter '{name}'",
                    call.span,
                    f"write {call.func}({', '.join(names[:required])})",
                )
        return bound

    def _is_level(self, node: ast.Expr, level: sp.Expr) -> bool:
        return (
            isinstance(node, ast.Subscript)
            and isinstance(node.base, ast.Name)
            and node.base.id == self.message
            and len(node.indices) == 1
            and not isinstance(node.indices[0], ast.Slice)
            and sp.simplify(self.builder.index(node.indices[0]) - level) == 0
        )

    def _table(self, expr: sp.Expr, what: str, span: Span) -> np.ndarray:
        if expr.free_symbols - {T}:
            raise self.err(DtgTypeError, f"{what} must be a function of t alone", span)
        values = symbolic.table(expr, self.steps, start=1)
        bad = [t for t in range(1, self.steps + 1) if not np.isfinite(values[t])]
        if bad:
            raise self.err(
                DtgRangeError,
                f"{what} is not a finite number at level t = {bad[0]} (value {values[bad[0]]})",
                span,
                "check for a division by zero or the log/sqrt of a non-positive number there",
            )
        return values

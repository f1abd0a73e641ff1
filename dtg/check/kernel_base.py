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
from ..ir import expr as ir
from ..ir.printer import to_text
from ..syntax import ast
from ..syntax.printer import brief, index_to_source
from . import exact, symbolic
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

    def _own_level(self, level: ast.Level) -> None:
        """The level a statement defines is of the model's message and its index uses only
        ``t``, ``T`` and numbers."""
        if level.message != self.message:
            raise self.err(
                DtgLevelError,
                f"'{level.message}' is not the model's message '{self.message}'",
                level.span,
                f"write {self.message}[…]",
            )
        ExprChecker(self.scope(), self.source)._check_index_names(level.index)

    def _lhs(self, statement, expected: sp.Expr, rule: str) -> None:
        level = statement.level
        self._own_level(level)
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

    def _table(
        self, expr: sp.Expr, what: str, span: Span, node: ir.Expr | None = None, role: str = ""
    ) -> np.ndarray:
        """``expr`` at ``t = 0..T`` in float64; a level where it is not finite is an error, at
        the schedule that makes it so when there is one (see :meth:`_blame_schedule`).

        :param node: the IR expression ``expr`` was built from (to find its schedules).
        :param role: what ``node`` is in the kernel (``the std``), for the schedule's message.
        """
        if expr.free_symbols - {T}:
            raise self.err(DtgTypeError, f"{what} must be a function of t alone", span)
        values = symbolic.table(expr, self.steps, start=1)
        bad = [t for t in range(1, self.steps + 1) if not np.isfinite(values[t])]
        for t in bad[: exact.TRIES]:  # float64 rounding (sqrt(-1e-16)): the exact value decides
            value = exact.value_at(expr, t)
            if value is not None:
                values[t] = value
        bad = [t for t in bad if not np.isfinite(values[t])]
        if bad:
            if node is not None:
                shown = f"{role or what} {brief(to_text(node, self.steps_name))}"
                self._blame_schedule(node, bad[0], shown, span)
            raise self.err(
                DtgRangeError,
                f"{what} is not a finite number at level t = {bad[0]} (value {values[bad[0]]})",
                span,
                "check for a division by zero or the log/sqrt of a non-positive number there",
            )
        return values

    def _blame_schedule(
        self, node: ir.Expr, level: int, what: str, span: Span, anywhere: bool = False
    ) -> None:
        """Raise at a schedule's definition when it makes ``node`` invalid at ``level``.

        A schedule is blamed when its value there is negative under a square root, a log or a
        fractional power (``sqrt(beta(t))``), or, when ``anywhere`` (a negative std or keep),
        under arithmetic alone (``0.1 + beta(t)``): the user fixes the schedule, not the kernel
        that uses it.
        """
        for call, under in _schedule_calls(node):
            expr = self.sympy(call)
            if expr.free_symbols - {T}:
                continue  # called with a level of the message: no table
            value = float(symbolic.table(expr, self.steps, start=1)[level])
            if not np.isfinite(value) or exact.near(value, 0.0):  # float64 rounding: exactly
                value = _or(exact.value_at(expr, level), value)
            undefined = not np.isfinite(value)  # 1/0 or sqrt(-1) inside the schedule itself
            if not undefined and not (value < 0 and (under or (anywhere and under == ""))):
                continue
            definition = self.schedule_defs[call.name]
            where = f"level t = {level}"
            shown = call.name
            if len(call.args) == 1:
                argument = self.sympy(call.args[0])
                at = symbolic.table(argument, self.steps, start=1)[level]
                if not argument.free_symbols - {T} and np.isfinite(at) and float(at).is_integer():
                    shown = f"{call.name}({int(at)})"
                    where = f"level t = {int(at)}" if int(at) != level else where
            used = (
                f"it is used on line {span.line}" if span is not None else f"it is used in {what}"
            )
            if undefined:
                message = (
                    f"the schedule '{call.name}' has no finite value at {where} ({shown} = "
                    f"{value}), and {what} uses it there"
                )
                hint = "check it for a division by zero, or the log/sqrt of a negative number"
                raise self.err(DtgRangeError, message, definition.span, hint, used)
            how = f"{under} there" if under else "is then negative"
            message = (
                f"the schedule '{call.name}' is negative at {where} ({shown} = {value:.6g}), "
                f"and {what} {how}"
            )
            hint = f"write it so that it is ≥ 0 at every level t = 1..{self.steps_name}"
            raise self.err(DtgRangeError, message, definition.span, hint, used)


_ROOTS = {ir.Builtin.SQRT: "takes its square root", ir.Builtin.LOG: "takes its log"}


def _schedule_calls(node: ir.Expr) -> list[tuple[ir.ScheduleCall, str | None]]:
    """The schedule calls in ``node``, each with what the innermost function it sits under does
    to it (``takes its square root``, ``takes its log``, ``raises it to a fractional power``),
    ``""`` when only arithmetic is applied to it, or ``None`` under another function
    (``sigmoid(lambda(t))``: a negative λ is meant)."""
    found: list[tuple[ir.ScheduleCall, str | None]] = []
    stack: list[tuple[ir.Expr, str | None]] = [(node, "")]
    while stack:
        item, under = stack.pop()
        if isinstance(item, ir.ScheduleCall):
            found.append((item, under))
        if isinstance(item, ir.Call):  # under sqrt/log: what it does; other functions: None
            does = _ROOTS.get(item.fn)
            stack.extend((child, does) for child in reversed(item.children()))
        elif isinstance(item, ir.Binary) and item.op is ir.BinOp.POW and not _whole(item.right):
            stack += [(item.right, under), (item.left, "raises it to a fractional power")]
        else:
            stack.extend((child, under) for child in reversed(item.children()))
    return found


def _whole(node: ir.Expr) -> bool:
    """Whether ``node`` is a whole-number constant (``beta(t)^2`` is defined for beta < 0)."""
    return isinstance(node, ir.Const) and float(node.value).is_integer()


def _or(value: float | None, default: float) -> float:
    return default if value is None else value

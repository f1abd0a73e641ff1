"""Infer the space of every expression and lower it to the typed IR (:mod:`dtg.ir.expr`).

An :class:`ExprChecker` walks one expression in a *context* (a :class:`~dtg.check.scope.Scope`):
which levels of the message it may read (``destroy x[t]`` reads ``x[t-1]``; ``generate x[t-1]``
reads ``x[t]``; a reward reads ``x[0]``), which names are parameters (``t``), and whether nets
may be called. Each mistake is a located :class:`~dtg.errors.DtgCheckError` naming both spaces or
the valid alternatives; each success is an IR node carrying its space and span.
"""

from __future__ import annotations

import math

import sympy as sp

from ..errors import DtgLevelError, DtgNameError, DtgTypeError, Span, did_you_mean, plural
from ..ir import Space
from ..ir import expr as ir
from ..names import is_reserved
from ..syntax import ast
from ..syntax.printer import brief, index_to_source
from .calls import CallLowering
from .collect import walk_syntax
from .hyper import HyperLowering
from .scope import CONSTANT_NAMES, SCALAR, VALUE_NAMES, Scope
from .symbolic import MATH_FUNCTIONS, T_SYMBOL

__all__ = ["ExprChecker", "names_in", "level_of"]


class ExprChecker(CallLowering, HyperLowering):
    """Infer spaces; raise located errors.

    :param scope: the names in scope.
    :param source: the file's text, attached to errors.
    """

    def __init__(self, scope: Scope, source: str) -> None:
        self.scope = scope
        self.source = source
        self.nets_called: list[str] = []

    def error(self, cls, message: str, span: Span, hints: list[str] | None = None):
        return cls(message, span, self.source, hints=hints or [])

    # ------------------------------------------------------------------ entry points
    def lower(self, node: ast.Expr) -> ir.Expr:
        """``node`` checked and lowered: an IR expression carrying its space and span."""
        method = getattr(self, "_" + type(node).__name__.lower())
        return method(node)

    def infer(self, node: ast.Expr) -> Space:
        """The space of ``node``: ``real`` with a shape (``()`` for scalars) or ``token``."""
        return self.lower(node).space

    def scalar(self, node: ast.Expr, what: str) -> ir.Expr:
        """``node`` lowered; it must be a scalar."""
        lowered = self.lower(node)
        if lowered.space != SCALAR:
            raise self.error(
                DtgTypeError, f"{what} must be a scalar, but it is {lowered.space}", node.span
            )
        return lowered

    def constant(self, node: ast.Expr) -> float | None:
        """The value of a constant number expression (``-3``, ``1e-3``), else ``None``."""
        if isinstance(node, ast.Number):
            return node.value
        if isinstance(node, ast.Unary) and isinstance(node.operand, ast.Number):
            return -node.operand.value if node.op == "-" else node.operand.value
        return None

    # ------------------------------------------------------------------ leaves
    def _number(self, node: ast.Number) -> ir.Expr:
        return ir.Const(node.value, node.is_integer, node.text, span=node.span)

    def _string(self, node: ast.String) -> ir.Expr:
        raise self.error(
            DtgTypeError, 'a string is only valid as a file name: file("data.npy")', node.span
        )

    def _name(self, node: ast.Name) -> ir.Expr:
        name, scope = node.id, self.scope
        if name == scope.position and name not in scope.params:
            return ir.Param(ir.ParamKind.POSITION, space=SCALAR, span=node.span)
        if name in scope.params:
            space = scope.params[name]
            if scope.schedule_params:
                return ir.Var(name, space=space, span=node.span)
            if scope.in_reward:  # the reward's parameter is the sample x[0]
                zero = ir.Level(ir.LevelAnchor.ABSOLUTE, 0)
                return ir.LevelRef(scope.message, zero, space=space, span=node.span)
            return ir.Param(ir.ParamKind.LEVEL, space=space, span=node.span)
        if name == scope.steps_name:
            return ir.Param(ir.ParamKind.STEPS, span=node.span)
        if name in CONSTANT_NAMES:
            value = math.pi if name == "pi" else math.e
            return ir.Const(value, False, name, span=node.span)
        if name == scope.message:
            raise self.error(
                DtgLevelError,
                f"'{name}' needs a level index here",
                node.span,
                hints=[scope.level_rule or f"write {name}[t-1] or {name}[t]"],
            )
        if name in scope.schedules or name in scope.nets or name in MATH_FUNCTIONS:
            what = (
                "schedule"
                if name in scope.schedules
                else "net"
                if name in scope.nets
                else "function"
            )
            raise self.error(
                DtgTypeError, f"the {what} '{name}' must be called: {name}(…)", node.span
            )
        if name in VALUE_NAMES:
            raise self.error(
                DtgTypeError,
                f"'{name}' is not a number",
                node.span,
                hints=["'masked' is only valid as a generation start: generate x[T] = masked"]
                if name == "masked"
                else [],
            )
        raise self.unknown(name, node.span)

    def unknown(self, name: str, span: Span, what: str = "name") -> DtgNameError:
        if is_reserved(name) or "." in name:
            return self.error(DtgNameError, f"'{name}' is not allowed in dtg expressions", span)
        hint = did_you_mean(name, self.scope.known_names())
        if name == "i" and what == "name":  # the position, outside a per-position keep
            hint = (
                "the token position i exists only in the keep (and redraw) of Mask and Shuffle, "
                "and as a schedule's parameter: schedule level(t, i) = …"
            )
        return self.error(DtgNameError, f"unknown {what} '{name}'", span, [hint] if hint else [])

    # ------------------------------------------------------------------ operators
    def _unary(self, node: ast.Unary) -> ir.Expr:
        operand = self.lower(node.operand)
        self._require_real(operand.space, node.operand, "arithmetic")
        if node.op == "+":
            return operand
        return ir.Neg(operand, space=operand.space, span=node.span)

    def _binary(self, node: ast.Binary) -> ir.Expr:
        # A chain a + b + c + … is lowered along its left spine in a loop: its length costs no
        # recursion (only true nesting does; see dtg.syntax.depth).
        spine = [node]
        while isinstance(spine[-1].left, ast.Binary):
            spine.append(spine[-1].left)
        lowered = self.lower(spine[-1].left)
        for item in reversed(spine):
            lowered = self._combine(item, lowered, self.lower(item.right))
        return lowered

    def _combine(self, node: ast.Binary, lowered_left: ir.Expr, lowered_right: ir.Expr) -> ir.Expr:
        left, right = lowered_left.space, lowered_right.space
        self._require_real(left, node.left, "arithmetic")
        self._require_real(right, node.right, "arithmetic")
        space = right if left == SCALAR else left if right == SCALAR or left == right else None
        if space is not None:
            op = ir.BinOp(node.op)
            return ir.Binary(op, lowered_left, lowered_right, space=space, span=node.span)
        raise self.error(
            DtgTypeError,
            f"'{node.op}' between {left} and {right}: the shapes do not match",
            node.span,
            hints=["operands must have the same shape, or one of them must be a scalar"],
        )

    def _require_real(self, space: Space, node: ast.Expr, what: str) -> None:
        if space.kind != "real":
            raise self.error(
                DtgTypeError,
                f"{what} on {space}: tokens are not numbers",
                node.span,
                hints=[
                    "token messages can only be passed to channels (Mask, Shuffle, Guess) and nets"
                ],
            )

    def _vector(self, node: ast.Vector) -> ir.Expr:
        if not node.items:
            raise self.error(DtgTypeError, "an empty vector", node.span)
        items = tuple(self.scalar(item, "a vector element") for item in node.items)
        return ir.Vector(items, space=Space("real", (len(items),)), span=node.span)

    # ------------------------------------------------------------------ subscripts
    def _subscript(self, node: ast.Subscript) -> ir.Expr:
        base = node.base
        if isinstance(base, ast.Name) and base.id == self.scope.message:
            return self._level(node)
        lowered = self.lower(base)
        space = lowered.space
        self._require_real(space, base, "indexing")
        if len(node.indices) > len(space.shape):
            raise self.error(
                DtgTypeError,
                f"{plural(len(node.indices), 'index', 'indices')} into a value of space {space}",
                node.span,
            )
        shape: list[int] = []
        items: list[int | slice] = []
        for dim, index in zip(space.shape, node.indices, strict=False):
            if isinstance(index, ast.Slice):
                start = self._int_index(index.start, 0, dim, index)
                stop = self._int_index(index.stop, dim, dim, index)
                if not 0 <= start < stop <= dim:
                    raise self.error(
                        DtgTypeError,
                        f"slice {start}:{stop} is out of range for a dimension of size {dim}",
                        index.span,
                    )
                shape.append(stop - start)
                items.append(slice(start, stop))
            else:
                at = self._int_index(index, 0, dim, index)
                if not -dim <= at < dim:
                    raise self.error(
                        DtgTypeError, f"index {at} is out of range for size {dim}", index.span
                    )
                items.append(at)
        shape.extend(space.shape[len(node.indices) :])
        out = Space("real", tuple(shape))
        return ir.Index(lowered, tuple(items), space=out, span=node.span)

    def _int_index(self, node: ast.Expr | None, default: int, dim: int, where) -> int:
        if node is None:
            return default
        value = self.constant(node)
        if value is None or not float(value).is_integer():
            raise self.error(
                DtgTypeError, "indices and slice bounds must be whole numbers", node.span
            )
        return int(value)

    def _level(self, node: ast.Subscript) -> ir.Expr:
        scope = self.scope
        if len(node.indices) != 1 or isinstance(node.indices[0], ast.Slice):
            raise self.error(
                DtgLevelError,
                f"a level of '{scope.message}' takes one index, e.g. x[t-1]",
                node.span,
            )
        index_node = node.indices[0]
        self._check_index_names(index_node)
        assert scope.index_of is not None
        level = scope.index_of(index_node)
        for allowed, space in scope.levels.items():
            if sp.simplify(level - allowed) == 0:
                return ir.LevelRef(scope.message, level_of(level), space=space, span=node.span)
        raise self.error(
            DtgLevelError,
            f"{scope.message}[{brief(index_to_source(index_node))}] cannot be read here",
            node.span,
            hints=[scope.level_rule] if scope.level_rule else [],
        )

    def _check_index_names(self, node: ast.Expr) -> None:
        for name in names_in(node):
            if name.id not in ("t", self.scope.steps_name):
                raise self.error(
                    DtgLevelError,
                    f"a level index may use only t, {self.scope.steps_name} and numbers, not '{name.id}'",
                    name.span,
                )


def names_in(node: ast.Expr) -> list[ast.Name]:
    """Every name written in ``node`` (a level index, when checking what it may use)."""
    return [item for item in walk_syntax(node) if isinstance(item, ast.Name)]


def level_of(level: sp.Expr) -> ir.Level:
    """A level index (a sympy expression in ``t``, ``T`` already a number) as an IR level."""
    offset = sp.expand(level - T_SYMBOL)
    if offset.is_Integer:
        return ir.Level(ir.LevelAnchor.CURRENT, int(offset))
    if getattr(level, "is_Integer", False):
        return ir.Level(ir.LevelAnchor.ABSOLUTE, int(level))
    raise ValueError(f"level {level} is neither t + k nor a number")

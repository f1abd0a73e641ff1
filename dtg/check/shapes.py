"""Infer the space of every expression, resolving names on the way.

An :class:`ExprChecker` walks one expression in a *context*: which levels of the message it may
read (``destroy x[t]`` reads ``x[t-1]``; ``generate x[t-1]`` reads ``x[t]``; a reward reads
``x[0]``), which names are parameters (``t``), and whether nets may be called. Each mistake is a
located :class:`~dtg.errors.DtgCheckError` naming both spaces or the valid alternatives.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import sympy as sp

from ..errors import DtgLevelError, DtgNameError, DtgTypeError, Span, did_you_mean
from ..ir import NetSpec, Space
from ..symbolic import MATH_FUNCTIONS
from ..syntax import ast

__all__ = ["Scope", "ExprChecker", "SCALAR", "CHANNELS", "REDUCTIONS", "CONSTANT_NAMES"]

SCALAR = Space("real", ())
CHANNELS = ("Normal", "Categorical", "Mask", "Shuffle", "MashLast", "Guess")
REDUCTIONS = ("sum", "mean")
BINARY_FUNCTIONS = ("min", "max")
CONSTANT_NAMES = ("pi", "e")
VALUE_NAMES = ("masked", "true", "false")


@dataclass
class Scope:
    """What names mean inside one model.

    :param levels: level index (sympy, in ``t``) → the space of that level, for the levels the
        current expression may read. ``None`` entry ``rule`` explains the rule when violated.
    """

    message: str
    steps_name: str
    steps: int
    schedules: dict[str, tuple[str, ...]]
    nets: dict[str, NetSpec]
    targets: dict[str, int]
    params: dict[str, Space] = field(default_factory=dict)
    levels: dict[sp.Expr, Space] = field(default_factory=dict)
    level_rule: str = ""
    allow_nets: bool = True
    index_of: Callable[[ast.Expr], sp.Expr] | None = None
    #: Python rewards registered by the user (dtg.plugins); callable in reward statements only.
    plugins: frozenset[str] = frozenset()
    in_reward: bool = False

    def known_names(self) -> list[str]:
        return [
            self.message,
            self.steps_name,
            *self.schedules,
            *self.nets,
            *self.targets,
            *self.params,
            *MATH_FUNCTIONS,
            *REDUCTIONS,
            *BINARY_FUNCTIONS,
            "classify",
            *CONSTANT_NAMES,
            *self.plugins,
        ]


class ExprChecker:
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
    def infer(self, node: ast.Expr) -> Space:
        """The space of ``node``: ``real`` with a shape (``()`` for scalars) or ``token``."""
        method = getattr(self, "_" + type(node).__name__.lower())
        return method(node)

    def scalar(self, node: ast.Expr, what: str) -> None:
        space = self.infer(node)
        if space != SCALAR:
            raise self.error(DtgTypeError, f"{what} must be a scalar, but it is {space}", node.span)

    def constant(self, node: ast.Expr) -> float | None:
        """The value of a constant number expression (``-3``, ``1e-3``), else ``None``."""
        if isinstance(node, ast.Number):
            return node.value
        if isinstance(node, ast.Unary) and isinstance(node.operand, ast.Number):
            return -node.operand.value if node.op == "-" else node.operand.value
        return None

    # ------------------------------------------------------------------ leaves
    def _number(self, node: ast.Number) -> Space:
        return SCALAR

    def _string(self, node: ast.String) -> Space:
        raise self.error(
            DtgTypeError, 'a string is only valid as a file name: file("data.npy")', node.span
        )

    def _name(self, node: ast.Name) -> Space:
        name, scope = node.id, self.scope
        if name in scope.params:
            return scope.params[name]
        if name == scope.steps_name or name in CONSTANT_NAMES:
            return SCALAR
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
        if name.startswith("__") or "." in name:
            return self.error(DtgNameError, f"'{name}' is not allowed in dtg expressions", span)
        hint = did_you_mean(name, self.scope.known_names())
        return self.error(DtgNameError, f"unknown {what} '{name}'", span, [hint] if hint else [])

    # ------------------------------------------------------------------ operators
    def _unary(self, node: ast.Unary) -> Space:
        space = self.infer(node.operand)
        self._require_real(space, node.operand, "arithmetic")
        return space

    def _binary(self, node: ast.Binary) -> Space:
        left, right = self.infer(node.left), self.infer(node.right)
        self._require_real(left, node.left, "arithmetic")
        self._require_real(right, node.right, "arithmetic")
        if left == SCALAR:
            return right
        if right == SCALAR or left == right:
            return left
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

    def _vector(self, node: ast.Vector) -> Space:
        if not node.items:
            raise self.error(DtgTypeError, "an empty vector", node.span)
        for item in node.items:
            self.scalar(item, "a vector element")
        return Space("real", (len(node.items),))

    # ------------------------------------------------------------------ subscripts
    def _subscript(self, node: ast.Subscript) -> Space:
        base = node.base
        if isinstance(base, ast.Name) and base.id == self.scope.message:
            return self._level(node)
        space = self.infer(base)
        self._require_real(space, base, "indexing")
        if len(node.indices) > len(space.shape):
            raise self.error(
                DtgTypeError,
                f"{len(node.indices)} indices into a value of space {space}",
                node.span,
            )
        shape: list[int] = []
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
            else:
                at = self._int_index(index, 0, dim, index)
                if not -dim <= at < dim:
                    raise self.error(
                        DtgTypeError, f"index {at} is out of range for size {dim}", index.span
                    )
        shape.extend(space.shape[len(node.indices) :])
        return Space("real", tuple(shape))

    def _int_index(self, node: ast.Expr | None, default: int, dim: int, where) -> int:
        if node is None:
            return default
        value = self.constant(node)
        if value is None or not float(value).is_integer():
            raise self.error(
                DtgTypeError, "indices and slice bounds must be whole numbers", node.span
            )
        return int(value)

    def _level(self, node: ast.Subscript) -> Space:
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
                return space
        shown = str(level).replace(" ", "")
        raise self.error(
            DtgLevelError,
            f"{scope.message}[{shown}] cannot be read here",
            node.span,
            hints=[scope.level_rule] if scope.level_rule else [],
        )

    def _check_index_names(self, node: ast.Expr) -> None:
        for name in _names_in(node):
            if name.id not in ("t", self.scope.steps_name):
                raise self.error(
                    DtgLevelError,
                    f"a level index may use only t, {self.scope.steps_name} and numbers, not '{name.id}'",
                    name.span,
                )

    # ------------------------------------------------------------------ calls
    def _call(self, node: ast.Call) -> Space:
        func, scope = node.func, self.scope
        if func in scope.schedules:
            params = scope.schedules[func]
            self._arity(node, len(params), f"the schedule '{func}'")
            for arg in node.args:
                self.scalar(arg, f"an argument of the schedule '{func}'")
            return SCALAR
        if func in MATH_FUNCTIONS:
            self._arity(node, 1, f"'{func}'")
            space = self.infer(node.args[0])
            self._require_real(space, node.args[0], f"{func}()")
            return space
        if func in BINARY_FUNCTIONS:
            self._arity(node, 2, f"'{func}'")
            spaces = [self.infer(arg) for arg in node.args]
            for space, arg in zip(spaces, node.args, strict=True):
                self._require_real(space, arg, f"{func}()")
            if spaces[0] == SCALAR or spaces[0] == spaces[1]:
                return spaces[1]
            if spaces[1] == SCALAR:
                return spaces[0]
            raise self.error(
                DtgTypeError,
                f"{func}() of {spaces[0]} and {spaces[1]}: the shapes do not match",
                node.span,
            )
        if func in REDUCTIONS:
            self._arity(node, 1, f"'{func}'")
            space = self.infer(node.args[0])
            self._require_real(space, node.args[0], f"{func}()")
            return SCALAR
        if func in scope.nets:
            return self._net_call(node, scope.nets[func])
        if func == "classify":
            return self._classify(node)
        if func in scope.targets:
            self._arity(node, 1, f"the target '{func}'")
            space = self.infer(node.args[0])
            dim = scope.targets[func]
            if space != Space("real", (dim,)):
                raise self.error(
                    DtgTypeError,
                    f"the target '{func}' is a density on real[{dim}], but its argument is {space}",
                    node.args[0].span,
                )
            return SCALAR
        if func in scope.plugins:
            if not scope.in_reward:
                raise self.error(
                    DtgTypeError,
                    f"'{func}' is a Python reward (a plug-in): it can be called in a reward "
                    "statement only",
                    node.func_span,
                )
            self._arity(node, 1, f"the plug-in reward '{func}'")
            self.infer(node.args[0])
            return SCALAR
        if func in CHANNELS:
            raise self.error(
                DtgTypeError,
                f"'{func}' is a channel: it can only follow '~' in a destroy or generate statement",
                node.func_span,
            )
        error = self.unknown(func, node.func_span, "function")
        if scope.in_reward and not error.hints and not func.startswith("__"):
            error.hints.append(
                "a reward written in Python is registered by the user: "
                f"dtg.register_reward('{func}', fn) or --plugin FILE.py"
            )
        raise error

    def _classify(self, node: ast.Call) -> Space:
        """``classify(x[0], classes = [0, 2, 4])``: log-probability of the classes (a scalar)."""
        if len(node.args) != 1 or [k.name for k in node.kwargs] != ["classes"]:
            raise self.error(
                DtgTypeError,
                "classify takes an image and the classes: classify(x[0], classes = [0, 2, 4, 6, 8])",
                node.span,
            )
        space = self.infer(node.args[0])
        if space.shape != (64,) and space.shape != (8, 8):
            raise self.error(
                DtgTypeError,
                f"classify's built-in digits classifier reads 8x8 images (64 pixels), got {space}",
                node.args[0].span,
            )
        classes = node.kwargs[0].value
        items = classes.items if isinstance(classes, ast.Vector) else ()
        values = [self.constant(i) for i in items]
        if not values or any(
            v is None or not float(v).is_integer() or not 0 <= v <= 9 for v in values
        ):
            raise self.error(
                DtgTypeError,
                "classes must be a list of digits 0..9, e.g. [0, 2, 4, 6, 8]",
                classes.span,
            )
        return SCALAR

    def _arity(self, node: ast.Call, count: int, what: str) -> None:
        if node.kwargs:
            raise self.error(
                DtgTypeError, f"{what} takes no keyword arguments", node.kwargs[0].span
            )
        if len(node.args) != count:
            raise self.error(
                DtgTypeError,
                f"{what} takes {count} argument{'s' if count != 1 else ''}, got {len(node.args)}",
                node.span,
            )

    def _net_call(self, node: ast.Call, net: NetSpec) -> Space:
        if not self.scope.allow_nets:
            raise self.error(
                DtgTypeError,
                f"the net '{net.name}' cannot be called here: schedules and rewards are fixed functions",
                node.func_span,
            )
        signature = "(" + ", ".join(map(str, net.inputs)) + f") -> {net.output}"
        self._arity(node, len(net.inputs), f"the net '{net.name}' {signature}")
        for position, (arg, expected) in enumerate(zip(node.args, net.inputs, strict=True), 1):
            if expected.kind == "time":
                self.scalar(arg, f"the time input of '{net.name}'")
                continue
            got = self.infer(arg)
            if got != expected:
                raise self.error(
                    DtgTypeError,
                    f"argument {position} of the net '{net.name}' is {got}, but its signature "
                    f"{signature} expects {expected}",
                    arg.span,
                )
        self.nets_called.append(net.name)
        return net.output


def _names_in(node: ast.Expr) -> list[ast.Name]:
    out: list[ast.Name] = []
    stack: list[object] = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, ast.Name):
            out.append(item)
        elif isinstance(item, ast.Binary):
            stack += [item.left, item.right]
        elif isinstance(item, ast.Unary):
            stack.append(item.operand)
        elif isinstance(item, ast.Call):
            stack += list(item.args) + [k.value for k in item.kwargs]
        elif isinstance(item, ast.Subscript):
            stack.append(item.base)
            stack += list(item.indices)
        elif isinstance(item, ast.Vector):
            stack += list(item.items)
    return out

"""What a reward declares of its target: ``reward logr(x) = … { log_z = …, modes = […] }``.

The options (all optional):

- ``log_z``: ``log ∫ exp(logr(x)) dx``, a finite number or a constant expression of numbers,
  ``pi``, ``e``, ``T`` and the math functions (``log_z = log(2 * pi)``);
- ``modes``: a non-empty list of points of the reward's space (``[[0, 0], [5, 5]]`` for
  ``real[2]``, ``[-1, 1]`` for a scalar ``real``), pairwise distinct;
- ``mode_radius``: a positive number, how near a sample must come to a mode to cover it
  (default: half the smallest distance between two modes, 1 with a single mode).

A built-in target (``reward logr(x) = gmm25(x)``) brings its own log Z and modes; ``modes`` and
``mode_radius`` may replace the target's, ``log_z`` may not.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np

from ..errors import DtgNameError, DtgRangeError, DtgTypeError, did_you_mean, plural
from ..ir import Space
from ..ir import expr as ir
from ..syntax import ast
from ..syntax.printer import brief, expr_to_source
from ..targets import TARGETS
from .exprs import ExprChecker

__all__ = ["REWARD_OPTIONS", "RewardOptions", "reward_options", "default_mode_radius"]

#: The options a reward statement takes, with what each is.
REWARD_OPTIONS = {
    "log_z": "the target's log normalising constant, log ∫ exp(reward) dx",
    "modes": "a list of the target's modes (points of the space)",
    "mode_radius": "how near a sample must come to a mode to cover it",
}

RewardOptions = tuple[float | None, tuple[tuple[float, ...], ...], float | None]

_NUMBER_HINT = "a number or a constant expression such as 0.5 * 10 * log(2 * pi)"
_UNARY = {
    ir.Builtin.SQRT: np.sqrt,
    ir.Builtin.EXP: np.exp,
    ir.Builtin.LOG: np.log,
    ir.Builtin.COS: np.cos,
    ir.Builtin.SIN: np.sin,
    ir.Builtin.TANH: np.tanh,
    ir.Builtin.SIGMOID: lambda a: 1.0 / (1.0 + np.exp(-a)),
    ir.Builtin.SOFTPLUS: lambda a: np.logaddexp(0.0, a),
    ir.Builtin.ABS: np.abs,
    ir.Builtin.FLOOR: np.floor,
}
_BINARY = {
    ir.BinOp.ADD: np.add,
    ir.BinOp.SUB: np.subtract,
    ir.BinOp.MUL: np.multiply,
    ir.BinOp.DIV: np.divide,
    ir.BinOp.POW: np.power,
}


class _Float(ir.ExprFold[np.float64]):
    """A constant scalar expression's value in float64 (inf or nan where it has none)."""

    def __init__(self, steps: int) -> None:
        self.steps = steps

    def const(self, node: ir.Const) -> np.float64:
        return np.float64(node.value)

    def param(self, node: ir.Param) -> np.float64:
        if node.kind is not ir.ParamKind.STEPS:
            raise _NotConstant
        return np.float64(self.steps)

    def neg(self, node: ir.Neg, operand: np.float64) -> np.float64:
        return -operand

    def binary(self, node: ir.Binary, left: np.float64, right: np.float64) -> np.float64:
        return _BINARY[node.op](left, right)

    def call(self, node: ir.Call, *args: np.float64) -> np.float64:
        if node.fn in _UNARY:
            return _UNARY[node.fn](args[0])
        if node.fn in (ir.Builtin.MIN, ir.Builtin.MAX):
            return (np.minimum if node.fn is ir.Builtin.MIN else np.maximum)(*args)
        raise _NotConstant


class _NotConstant(Exception):
    """An expression that reads something other than numbers (a net, a schedule, a level)."""


def default_mode_radius(modes: tuple[tuple[float, ...], ...]) -> float:
    """Half the smallest distance between two modes (1 for a single mode).

    :param modes: at least one point, pairwise distinct.
    :returns: the radius.
    """
    if len(modes) < 2:
        return 1.0
    points = np.asarray(modes, dtype=np.float64)
    gaps = np.sqrt(((points[:, None, :] - points[None, :, :]) ** 2).sum(-1))
    return float(gaps[~np.eye(len(points), dtype=bool)].min() / 2.0)


class _Options:
    def __init__(self, statement: ast.Reward, checker: ExprChecker, steps: int) -> None:
        self.statement = statement
        self.checker = checker
        self.steps = steps
        self.source = checker.source
        self.what = f"the reward '{statement.name}'"

    def number(self, node: ast.Expr, name: str) -> float:
        """A constant number, refused with its location when it is none or not finite."""
        quoted = brief(expr_to_source(node))
        value = self.checker.constant(node)
        if value is None:
            if isinstance(node, ast.String):
                raise DtgTypeError(
                    f"{self.what}: option '{name}' must be a number, got {quoted}",
                    node.span,
                    self.source,
                    hints=[f"write {_NUMBER_HINT}"],
                )
            try:
                lowered = self.checker.lower(node)
                if lowered.space.shape or lowered.space.kind != "real":
                    raise _NotConstant
                with np.errstate(all="ignore"):
                    value = float(_Float(self.steps).fold(lowered))
            except (_NotConstant, NotImplementedError):
                raise DtgTypeError(
                    f"{self.what}: option '{name}' must be a number, got {quoted}",
                    node.span,
                    self.source,
                    hints=[f"write {_NUMBER_HINT}"],
                ) from None
        if not math.isfinite(value):
            raise DtgRangeError(
                f"{self.what}: option '{name}' must be a finite number, got {quoted} = {value}",
                node.span,
                self.source,
            )
        return value

    def point(
        self, node: ast.Expr, shape: tuple[int, ...], index: int, space: Space
    ) -> list[float]:
        """One mode as its flattened coordinates, its nesting checked against ``shape``."""
        if not shape:
            if isinstance(node, ast.Vector):
                raise self._shape(node, index, space, "a list")
            return [self.number(node, "modes")]
        if not isinstance(node, ast.Vector):
            raise self._shape(node, index, space, "a number")
        if len(node.items) != shape[0]:
            raise self._shape(node, index, space, plural(len(node.items), "entry", "entries"))
        return [x for item in node.items for x in self.point(item, shape[1:], index, space)]

    def _shape(self, node: ast.Expr, index: int, space: Space, got: str) -> DtgTypeError:
        shape = tuple(space.shape)
        if not shape:
            want = "a number"
        elif len(shape) == 1:
            want = f"a list of {shape[0]} numbers"
        elif len(shape) == 2:
            want = f"a list of {shape[0]} lists of {shape[1]} numbers"
        else:
            want = f"nested lists of shape {list(shape)}"
        return DtgTypeError(
            f"{self.what}: mode {index + 1} must be a point of the space {space} ({want}), "
            f"got {got}: {brief(expr_to_source(node))}",
            node.span,
            self.source,
            hints=["modes = [[0, 0], [5, 5]] declares two modes of a real[2] space"],
        )

    def modes(self, node: ast.Expr, space: Space) -> tuple[tuple[float, ...], ...]:
        if space.kind != "real":
            raise DtgTypeError(
                f"{self.what}: modes are points of a real space, but the space is {space}",
                node.span,
                self.source,
            )
        if not isinstance(node, ast.Vector) or not node.items:
            raise DtgTypeError(
                f"{self.what}: option 'modes' must be a non-empty list of points, got "
                f"{brief(expr_to_source(node))}",
                node.span,
                self.source,
                hints=["modes = [[0, 0], [5, 5]] declares two modes of a real[2] space"],
            )
        shape = tuple(space.shape)
        points = [tuple(self.point(item, shape, i, space)) for i, item in enumerate(node.items)]
        for (i, a), (j, b) in itertools.combinations(enumerate(points), 2):
            if a == b:
                raise DtgRangeError(
                    f"{self.what}: modes {i + 1} and {j + 1} are the same point",
                    node.items[j].span,
                    self.source,
                )
        return tuple(points)


def reward_options(
    statement: ast.Reward,
    space: Space,
    checker: ExprChecker,
    steps: int,
    target: str | None,
    sampler: bool = True,
) -> RewardOptions:
    """The reward's declared log Z and modes, checked, with a built-in target's filled in.

    :param statement: the reward statement.
    :param space: the reward's space (of ``x[0]``).
    :param checker: lowers constant expressions (its scope reads no level and no net).
    :param steps: the value of ``T``.
    :param target: the built-in target the body names, if any.
    :param sampler: whether the model is a sampler (``space x``); a data model's reward
        (fine-tuning) takes no options.
    :returns: ``(log_z, modes, mode_radius)``; ``None``/``()`` where nothing is known.
    :raises DtgCheckError: for an unknown or repeated option, a value that is not a finite
        number, modes of the wrong shape or repeated, a radius that is not positive.
    """
    check = _Options(statement, checker, steps)
    given: dict[str, ast.Option] = {}
    for option in statement.options:
        if option.name not in REWARD_OPTIONS:
            hint = did_you_mean(option.name, REWARD_OPTIONS)
            raise DtgNameError(
                f"{check.what} has no option '{option.name}'",
                option.span,
                check.source,
                hints=[hint] if hint else [f"its options are: {', '.join(REWARD_OPTIONS)}"],
            )
        if option.name in given:
            raise DtgNameError(f"option '{option.name}' given twice", option.span, check.source)
        if not sampler:
            raise DtgTypeError(
                f"{check.what} declares '{option.name}', but only a sampler's reward "
                "(a model with 'space …') describes a target",
                option.span,
                check.source,
            )
        given[option.name] = option
    known: Any = TARGETS[target] if target is not None else None
    log_z = known.log_z if known is not None else None
    modes = tuple(known.modes) if known is not None else ()
    radius = known.mode_radius if known is not None else None
    if "log_z" in given:
        if known is not None:
            raise DtgTypeError(
                f"{check.what} is the built-in target '{target}', whose log Z is known "
                f"({log_z:.6g}): it cannot be declared",
                given["log_z"].span,
                check.source,
            )
        log_z = check.number(given["log_z"].value, "log_z")
    if "modes" in given:
        modes, radius = check.modes(given["modes"].value, space), None
    if "mode_radius" in given:
        node = given["mode_radius"].value
        radius = check.number(node, "mode_radius")
        if radius <= 0:
            raise DtgRangeError(
                f"{check.what}: option 'mode_radius' must be positive, got {radius:g}",
                node.span,
                check.source,
            )
        if not modes:
            raise DtgTypeError(
                f"{check.what} declares 'mode_radius' but no modes",
                given["mode_radius"].span,
                check.source,
                hints=["add modes = [[…], …] beside it"],
            )
    if modes and radius is None:
        radius = default_mode_radius(modes)
    return log_z, modes, radius

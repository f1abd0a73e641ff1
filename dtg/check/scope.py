"""What names mean inside one model: the :class:`Scope` an expression is checked in."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import sympy as sp

from ..ir import NetSpec, Space
from ..names import (
    BINARY_FUNCTIONS,
    CHANNELS,
    CONSTANT_NAMES,
    MATH_FUNCTIONS,
    REDUCTIONS,
    VALUE_NAMES,
)
from ..syntax import ast

__all__ = [
    "Scope",
    "SCALAR",
    "CHANNELS",
    "REDUCTIONS",
    "BINARY_FUNCTIONS",
    "CONSTANT_NAMES",
    "VALUE_NAMES",
]

SCALAR = Space("real", ())


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
    #: The parameters are a schedule's own (lowered to ``Var``), not ``t`` or the reward's x.
    schedule_params: bool = False
    #: The model's reward (its name and the space of its sample), for ``grad(logr, x[t])``.
    reward: tuple[str, Space] | None = None
    #: The name of the token position (``i``) where a per-position keep may read it.
    position: str | None = None
    #: The message's number of token positions (``None`` for a real message).
    positions: int | None = None

    def known_names(self) -> list[str]:
        return [
            self.message,
            self.steps_name,
            *self.schedules,
            *self.nets,
            *self.targets,
            *self.params,
            *([self.position] if self.position else []),
            *MATH_FUNCTIONS,
            *REDUCTIONS,
            *BINARY_FUNCTIONS,
            "classify",
            "grad",
            *CONSTANT_NAMES,
            *self.plugins,
        ]

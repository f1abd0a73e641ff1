"""The options of an objective and of ``train { }``, checked against :mod:`dtg.ir.options`
(modes converted to their enums), and the objective's fit."""

from __future__ import annotations

import math
from typing import Any

from ..errors import (
    DtgNameError,
    DtgObjectiveError,
    DtgTypeError,
    Span,
    did_you_mean,
)
from ..ir import (
    ObjectiveKind,
    ObjectiveSpec,
)
from ..syntax import ast
from .declarations import option_value
from .exprs import ExprChecker
from .objectives import (
    OBJECTIVE_OPTIONS,
    OptionSpec,
    fitting_objectives,
    misfit,
)
from .scope import Scope

__all__ = ["check_options", "check_objective"]


def check_options(
    given: tuple,
    specs: dict[str, OptionSpec],
    what: str,
    source: str,
    checker: ExprChecker,
    positional: tuple = (),
    span: Span | None = None,
) -> dict[str, Any]:
    values: dict[str, Any] = {name: spec.default for name, spec in specs.items()}
    names = list(specs)
    if len(positional) > len(names):
        raise DtgTypeError(
            f"{what} takes at most {len(names)} positional option(s)", positional[-1].span, source
        )
    pairs = [(names[i], node, node.span) for i, node in enumerate(positional)]
    pairs += [(o.name, o.value, o.span) for o in given]
    seen: set[str] = set()
    for name, node, where in pairs:
        if name not in specs:
            hint = did_you_mean(name, names)
            raise DtgNameError(
                f"{what} has no option '{name}'",
                where,
                source,
                hints=[hint] if hint else [f"its options are: {', '.join(names) or 'none'}"],
            )
        if name in seen:
            raise DtgNameError(f"option '{name}' given twice", where, source)
        seen.add(name)
        values[name] = _option(
            name, option_value(node, checker), specs[name], what, node.span, source
        )
    return values


def _option(name: str, value: Any, spec: OptionSpec, what: str, span: Span, source: str) -> Any:
    def bad(expected: str) -> DtgTypeError:
        return DtgTypeError(
            f"{what} option '{name}' must be {expected}, got {value!r}", span, source
        )

    if spec.kind == "choice":
        if value not in spec.choices:
            hint = did_you_mean(str(value), spec.choices)
            raise DtgTypeError(
                f"{what} option '{name}' must be one of {', '.join(spec.choices)}, got {value!r}",
                span,
                source,
                hints=[hint] if hint else [],
            )
        return spec.enum(value) if spec.enum is not None else value
    if spec.kind == "bool":
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise bad("a number")
    if spec.kind == "int":
        if not float(value).is_integer():
            raise bad("a whole number")
        value = int(value)
        if abs(value) >= 2**63:  # torch and numpy take 64-bit integers
            raise bad("a whole number below 2^63")
    if isinstance(value, float) and not math.isfinite(value):  # a Python int is always finite
        raise bad("finite")
    if spec.low is not None and (value < spec.low or (spec.open_low and value <= spec.low)):
        raise bad(f"{'>' if spec.open_low else '≥'} {spec.low:g}")
    if spec.high is not None and value > spec.high:
        raise bad(f"≤ {spec.high:g}")
    return value


def check_objective(
    statement: ast.Objective | None, model: ast.Model, source: str, facts: dict[str, Any]
) -> ObjectiveSpec:

    fitting = fitting_objectives(facts)
    if statement is None:
        raise DtgObjectiveError(
            f"model '{model.name}' has no objective",
            model.name_span,
            source,
            hints=[f"objectives that fit this model: {', '.join(fitting) or 'none'}"],
        )
    kinds = {k.value: k for k in ObjectiveKind}
    if statement.name not in kinds:
        hint = did_you_mean(statement.name, kinds)
        raise DtgNameError(
            f"unknown objective '{statement.name}'",
            statement.name_span,
            source,
            hints=([hint] if hint else [])
            + [f"objectives that fit this model: {', '.join(fitting)}"],
        )
    kind = kinds[statement.name]
    reason = misfit(kind, facts)
    if reason is not None:
        raise DtgObjectiveError(
            f"objective {kind.value} does not fit this model: {reason}",
            statement.name_span,
            source,
            hints=[f"objectives that fit this model: {', '.join(fitting) or 'none'}"],
        )
    checker = ExprChecker(Scope("", "", 0, {}, {}, {}), source)
    options = check_options(
        tuple(ast.Option(k.name, k.value, span=k.span) for k in statement.kwargs),
        OBJECTIVE_OPTIONS[kind],
        f"objective {kind.value}",
        source,
        checker,
        positional=statement.args,
    )
    return ObjectiveSpec(kind, options, statement.span)


# Re-exported for the kernel checker.

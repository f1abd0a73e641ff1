"""The options of an objective and of ``train { }``, checked against :mod:`dtg.ir.options`
(modes converted to their enums), and the objective's fit."""

from __future__ import annotations

from typing import Any

from ..errors import (
    DtgNameError,
    DtgObjectiveError,
    DtgTypeError,
    Span,
    did_you_mean,
    plural,
)
from ..ir import (
    ObjectiveKind,
    ObjectiveSpec,
)
from ..ir.options import OptionValueError, check_option
from ..syntax import ast
from ..syntax.printer import brief, expr_to_source
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
            f"{what} takes at most {plural(len(names), 'positional option')}",
            positional[-1].span,
            source,
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
        values[name] = _option(name, option_value(node, checker), specs[name], what, node, source)
    return values


def _option(name: str, value: Any, spec: OptionSpec, what: str, node: ast.Expr, source: str) -> Any:
    """``value`` checked by the one option validator, its refusal located at ``node`` and
    quoting it as the user wrote it."""
    try:
        return check_option(spec, value)
    except OptionValueError as error:
        raise DtgTypeError(
            f"{what} option '{name}' must be {error.expected}, got {brief(expr_to_source(node))}",
            node.span,
            source,
            hints=[error.hint] if error.hint else [],
        ) from None


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
    _check_local_search(statement, options, facts, source)
    return ObjectiveSpec(kind, options, statement.span)


def _check_local_search(
    statement: ast.Objective, options: dict[str, Any], facts: dict[str, Any], source: str
) -> None:
    """``local_search`` runs MALA on x[0] (a real space) and keeps the proposals after burn-in."""
    if not options.get("local_search"):
        return
    spans = {k.name: k.span for k in statement.kwargs}
    if facts.get("space_kind") != "real":
        raise DtgObjectiveError(
            f"local_search needs a real space (MALA follows ∇ log r), not a {facts['space_kind']} one",
            spans.get("local_search", statement.span),
            source,
        )
    steps, burn = options.get("ls_steps") or 200, options.get("ls_burn_in")
    burn = 100 if burn is None else burn
    if burn >= steps - 1:
        raise DtgObjectiveError(
            f"local search keeps the proposals after ls_burn_in = {burn:g} of ls_steps = "
            f"{steps:g} steps: none are left",
            spans.get("ls_burn_in", spans.get("ls_steps", statement.span)),
            source,
            hints=["make ls_steps > ls_burn_in + 1"],
        )


# Re-exported for the kernel checker.

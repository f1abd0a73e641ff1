"""Declarations: spaces, schedules (their call graph), nets (their options and size), the
data source (its options against the space), the reward, and constant option values."""

from __future__ import annotations

from typing import Any

import sympy as sp

from ..data import DataError, bind_source
from ..errors import (
    DtgCheckError,
    DtgDataError,
    DtgRangeError,
    DtgTypeError,
)
from ..ir import (
    DataSourceSpec,
    NetSpec,
    RewardSpec,
    Space,
)
from ..ir import expr as ir
from ..nets import MAX_PARAMETERS, NetConfigError, count_parameters
from ..syntax import ast
from ..syntax.depth import Depth, expressions, first_too_deep, measure
from ..syntax.parser import MAX_DEPTH, MAX_LENGTH, depth_error
from ..syntax.printer import expr_to_source
from .collect import walk_syntax
from .exprs import ExprChecker
from .reward_options import reward_options
from .scope import Scope

__all__ = [
    "space_of",
    "check_schedule_cycles",
    "check_inlined_depth",
    "option_value",
    "net_spec",
    "check_data_source",
    "check_reward",
    "MAX_SCHEDULE_DEPTH",
    "MAX_INLINED_NODES",
    "INLINED_LIMIT",
]

#: How deep schedules may call schedules, and how large one may grow once calls are inlined.
MAX_SCHEDULE_DEPTH = 64
MAX_INLINED_NODES = 20_000
#: The parser's limits (:data:`dtg.syntax.parser.MAX_DEPTH`, ``MAX_LENGTH``) with room for the
#: statement that calls a schedule at those limits; sympy (which writes ``sigmoid`` as four
#: nodes) and the torch closures recurse on what is left once schedules are written out.
INLINED_LIMIT = Depth(MAX_DEPTH + 20, MAX_LENGTH + 100)


def space_of(node: ast.SpaceType) -> Space:
    if isinstance(node, ast.RealSpace):
        return Space("real", node.shape)
    if isinstance(node, ast.TokenSpace):
        return Space("token", node.shape, node.vocab)
    return Space("time")


def check_schedule_cycles(schedules: dict[str, ast.Schedule], source: str) -> None:
    """Refuse schedules defined through themselves, chains of calls deeper than
    :data:`MAX_SCHEDULE_DEPTH`, and schedules whose inlined form (each call replaced by the
    callee's body) exceeds :data:`MAX_INLINED_NODES` nodes — ``s2(t) = s1(t) + s1(t)`` and so on
    doubles at each link. Iterative, so a chain of any length is a message, not a RecursionError.
    """
    calls: dict[str, list[str]] = {}
    own_nodes: dict[str, int] = {}
    for name, schedule in schedules.items():
        nodes = list(walk_syntax(schedule.body))
        own_nodes[name] = len(nodes)
        calls[name] = [n.func for n in nodes if isinstance(n, ast.Call) and n.func in schedules]
    depth: dict[str, int] = {}
    size: dict[str, int] = {}
    for root in schedules:
        if root in depth:
            continue
        path, stack = [root], [iter(dict.fromkeys(calls[root]))]
        while stack:
            callee = next(stack[-1], None)
            if callee is None:
                name = path.pop()
                stack.pop()
                depth[name] = 1 + max((depth[c] for c in calls[name]), default=0)
                size[name] = own_nodes[name] + sum(size[c] for c in calls[name])
                if depth[name] > MAX_SCHEDULE_DEPTH:
                    raise DtgCheckError(
                        f"the schedule '{name}' calls schedules {depth[name]} deep "
                        f"(at most {MAX_SCHEDULE_DEPTH})",
                        schedules[name].span,
                        source,
                    )
                if size[name] > MAX_INLINED_NODES:
                    raise DtgCheckError(
                        f"the schedule '{name}' grows to more than {MAX_INLINED_NODES:,} terms "
                        "once the schedules it calls are written out",
                        schedules[name].span,
                        source,
                        hints=["a schedule that calls another twice doubles at every link"],
                    )
                continue
            if callee in path:
                cycle = " → ".join([*path[path.index(callee) :], callee])
                raise DtgCheckError(
                    f"the schedule '{callee}' is defined in terms of itself ({cycle})",
                    schedules[callee].span,
                    source,
                )
            if callee not in depth:
                path.append(callee)
                stack.append(iter(dict.fromkeys(calls[callee])))


def check_inlined_depth(
    statements: dict[str, Any], schedules: dict[str, ast.Schedule], source: str, file: str
) -> None:
    """Refuse an expression that nests deeper or chains longer than :data:`INLINED_LIMIT` once
    the schedules it calls are written out, as sympy and the backends write them. Run after
    :func:`check_schedule_cycles`: the calls form no cycle and go at most
    :data:`MAX_SCHEDULE_DEPTH` deep.

    :param statements: the model's statements (through ``extends``).
    :param schedules: the model's schedules by name.
    :param source: the file's text.
    :param file: the file name.
    """
    sizes: dict[str, Depth] = {}

    def checked(root: ast.Expr) -> None:
        for node in walk_syntax(root):
            if isinstance(node, ast.Call) and node.func in schedules and node.func not in sizes:
                body = schedules[node.func].body
                checked(body)  # at most MAX_SCHEDULE_DEPTH calls deep
                sizes[node.func] = measure(body, sizes)
        found = first_too_deep(root, INLINED_LIMIT, sizes)
        if found is not None:
            raise depth_error(*found, source, file, INLINED_LIMIT, inlined=True)

    for statement in statements.values():
        if isinstance(statement, (ast.Schedule, ast.Destroy, ast.Generate, ast.Reward)):
            for root in expressions(statement):
                checked(root)


def option_value(node: ast.Expr, checker: ExprChecker) -> Any:
    """A constant option value: a number, a bool, a name (as a string), a string or a list."""
    value = checker.constant(node)
    if value is not None:
        return int(value) if float(value).is_integer() and _integer_text(node) else value
    if isinstance(node, ast.Name):
        if node.id in ("true", "false"):
            return node.id == "true"
        return node.id
    if isinstance(node, ast.String):
        return node.value
    if isinstance(node, ast.Vector):
        return [option_value(item, checker) for item in node.items]
    raise DtgTypeError(
        "an option value must be a constant: a number, a name, true/false, a string or a list",
        node.span,
        checker.source,
    )


def _integer_text(node: ast.Expr) -> bool:
    number = node.operand if isinstance(node, ast.Unary) else node
    return isinstance(number, ast.Number) and number.is_integer


def net_spec(statement: ast.Net, source: str) -> NetSpec:
    inputs = tuple(space_of(s) for s in statement.inputs)
    output = space_of(statement.output)
    checker = ExprChecker(Scope("", "", 0, {}, {}, {}), source)
    if statement.arch.args:
        raise DtgTypeError(
            f"{statement.arch.func}(…) takes keyword options only, e.g. mlp(hidden = [128, 128])",
            statement.arch.args[0].span,
            source,
        )
    options = {k.name: option_value(k.value, checker) for k in statement.arch.kwargs}

    try:
        count = count_parameters(statement.arch.func, options, inputs, output)
    except NetConfigError as error:
        span = statement.arch.func_span
        for keyword in statement.arch.kwargs:
            if f"'{keyword.name}'" in error.message or f" {keyword.name} " in error.message:
                span = keyword.span
        raise DtgTypeError(
            f"net '{statement.name}': {error.message}",
            span,
            source,
            hints=[error.hint] if error.hint else [],
        ) from None
    if count > MAX_PARAMETERS:
        raise DtgRangeError(
            f"net '{statement.name}' would have {count:,} parameters, more than the limit of "
            f"{MAX_PARAMETERS:,}",
            statement.arch.span,
            source,
            hints=["is a size off by a few zeros?"],
        )
    return NetSpec(
        statement.name, inputs, output, statement.arch.func, options, statement.span, count
    )


def check_data_source(
    declaration: ast.Data, space: Space, source: str, checker: ExprChecker
) -> DataSourceSpec:
    """The data source with its options bound and checked against the declared space."""
    call = declaration.source
    assert call is not None
    for node in [*call.args, *(k.value for k in call.kwargs)]:
        if isinstance(node, ast.Name) and node.id not in ("true", "false"):
            raise DtgDataError(
                f"'{node.id}' is a bare name: {call.func}() takes numbers, lists and "
                "text in quotes",
                node.span,
                source,
                hints=[f'a file name goes in quotes: file("{node.id}.npy")']
                if call.func == "file"
                else [],
            )
    try:
        args = [option_value(a, checker) for a in call.args]
        kwargs = {k.name: option_value(k.value, checker) for k in call.kwargs}
        if space.kind == "time":
            raise DtgTypeError("data cannot have the space 'time'", declaration.span, source)
        return bind_source(call.func, args, kwargs, space, call.span)
    except DataError as error:
        raise DtgDataError(
            error.message, call.span, source, hints=[error.hint] if error.hint else []
        ) from None


def check_reward(
    statement: ast.Reward | None, space: Space, scope, source: str, sampler: bool = True
) -> RewardSpec | None:
    """The reward statement checked and lowered, with what it declares of its target.

    :param statement: the reward statement, if any.
    :param space: the space of the sample ``x[0]``.
    :param scope: makes the :class:`Scope` of an expression (keyword arguments as ``Scope``'s).
    :param source: the file's text.
    :param sampler: whether the model is a sampler (``space x``), whose reward may declare
        ``log_z`` and ``modes`` (see :mod:`dtg.check.reward_options`).
    :returns: the :class:`RewardSpec`, or ``None`` without a reward.
    """
    if statement is None:
        return None
    params = statement.params or ()
    if len(params) > 1:
        raise DtgTypeError(
            f"a reward takes one parameter (the sample x[0]), got {len(params)}",
            statement.span,
            source,
        )
    checker = ExprChecker(
        scope(
            params={p: space for p in params},
            levels={sp.Integer(0): space},
            level_rule="a reward reads the generated sample x[0] only",
            allow_nets=False,
            in_reward=True,
        ),
        source,
    )
    body = checker.scalar(statement.body, f"the reward '{statement.name}'")
    target = None
    if isinstance(body, ir.RewardCall) and body.kind is ir.RewardKind.TARGET:
        target = body.name
    constants = ExprChecker(
        scope(
            params={},
            level_rule="an option of the reward is a number: it cannot read the sample",
            allow_nets=False,
        ),
        source,
    )
    log_z, modes, radius = reward_options(
        statement, space, constants, constants.scope.steps, target, sampler
    )
    return RewardSpec(
        statement.name,
        params[0] if params else None,
        body,
        statement.span,
        target,
        expr_to_source(statement.body),
        log_z=log_z,
        modes=modes,
        mode_radius=radius,
    )

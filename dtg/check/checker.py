"""The checker: a parsed model → a :class:`~dtg.ir.ModelIR`, or a located error.

Stages, in order (each raises the first mistake it finds):

1. collect statements (through ``extends``), reject duplicates and missing ones;
2. resolve names and infer spaces in every expression (:mod:`dtg.check.shapes`);
3. check the level structure (``destroy x[t]`` reads ``x[t-1]``; ``generate x[t-1]`` reads ``x[t]``);
4. classify each channel's family with the sympy algebra and tabulate its parameters over
   ``t = 0..T`` in float64, checking their ranges on every level;
5. check that the objective fits the kernels, and its options and the ``train`` options.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import sympy as sp

from .. import plugins, symbolic
from ..data import DataError, bind_options, check_source
from ..errors import (
    DtgCheckError,
    DtgDataError,
    DtgLevelError,
    DtgNameError,
    DtgObjectiveError,
    DtgRangeError,
    DtgTypeError,
    Span,
    did_you_mean,
)
from ..ir import (
    Channel,
    DataSourceSpec,
    Direction,
    Family,
    Message,
    ModelIR,
    NetSpec,
    ObjectiveKind,
    ObjectiveSpec,
    RewardSpec,
    ScheduleDef,
    Space,
)
from ..ir import expr as ir
from ..ir.options import Role
from ..nets import MAX_PARAMETERS, NetConfigError, count_parameters
from ..syntax import ast
from ..syntax.printer import expr_to_source
from ..targets import TARGETS
from .exprs import ExprChecker
from .kernels import KernelChecker
from .objectives import (
    OBJECTIVE_OPTIONS,
    TRAIN_OPTIONS,
    OptionSpec,
    fitting_objectives,
    masking_problem,
    misfit,
)
from .scope import CHANNELS, CONSTANT_NAMES, REDUCTIONS, SCALAR, Scope

__all__ = ["check_module", "check_model", "MAX_STEPS"]

#: Largest ``T`` accepted: tables and trajectories are O(T).
MAX_STEPS = 100_000
#: The longest chain of ``extends`` (model, parent, grandparent, …).
MAX_EXTENDS_DEPTH = 32
#: How deep schedules may call schedules, and how large one may grow once calls are inlined.
MAX_SCHEDULE_DEPTH = 64
MAX_INLINED_NODES = 20_000

_RESERVED = {
    "t",
    "min",
    "max",
    "classify",
    *CHANNELS,
    *REDUCTIONS,
    *CONSTANT_NAMES,
    *symbolic.MATH_FUNCTIONS,
    "masked",
}


def check_module(module: ast.Module, parents: dict[str, ModelIR] | None = None) -> list[ModelIR]:
    """Check every model of a file; a model may extend one defined anywhere in the file.

    :param parents: models from elsewhere that ``extends`` may name.
    :returns: the checked models in source order.
    """
    source = module.source
    by_name: dict[str, ast.Model] = {}
    for model in module.models:
        if model.name in by_name:
            raise DtgNameError(
                f"model '{model.name}' is defined twice",
                model.name_span,
                source,
                related=[(by_name[model.name].name_span, "first defined here")],
            )
        by_name[model.name] = model
    done: dict[str, ModelIR] = dict(parents or {})
    visiting: set[str] = set()

    def visit(model: ast.Model, depth: int = 0) -> ModelIR:
        if model.name in done and done[model.name].syntax is model:
            return done[model.name]
        if model.parent is not None and depth >= MAX_EXTENDS_DEPTH:
            raise DtgCheckError(
                f"model '{model.name}' ends a chain of more than {MAX_EXTENDS_DEPTH} 'extends'",
                model.parent_span,
                source,
                hints=["extend the model you fine-tune directly instead of through a long chain"],
            )
        if model.name in visiting:
            raise DtgNameError(
                f"model '{model.name}' extends itself (through a cycle)", model.parent_span, source
            )
        visiting.add(model.name)
        parent_ir = None
        if model.parent is not None:
            if model.parent in by_name and model.parent != model.name:
                parent_ir = visit(by_name[model.parent], depth + 1)
            elif model.parent in done:
                parent_ir = done[model.parent]
            else:
                hint = did_you_mean(model.parent, [*by_name, *done])
                raise DtgNameError(
                    f"unknown parent model '{model.parent}'",
                    model.parent_span,
                    source,
                    hints=[hint]
                    if hint
                    else [f"define it in this file, or in {model.parent}.dtg beside this file"],
                )
        if parent_ir is not None and _generations(parent_ir) >= MAX_EXTENDS_DEPTH:
            raise DtgCheckError(
                f"model '{model.name}' ends a chain of more than {MAX_EXTENDS_DEPTH} 'extends'",
                model.parent_span,
                source,
                hints=["extend the model you fine-tune directly instead of through a long chain"],
            )
        ir = check_model(model, source, parent_ir)
        visiting.discard(model.name)
        done[model.name] = ir
        return ir

    return [visit(model) for model in module.models]


def _generations(ir: ModelIR) -> int:
    """How many models the chain ``ir``, its parent, … holds."""
    count = 0
    while ir is not None:
        count, ir = count + 1, ir.parent
    return count


# ----------------------------------------------------------------------------- collection

_SINGLE = {
    ast.Data: "message",
    ast.SpaceDecl: "message",
    ast.Steps: "steps",
    ast.Destroy: "destroy",
    ast.Reward: "reward",
    ast.Objective: "objective",
    ast.Train: "train",
}
_CHILD_MAY_REPLACE = {"reward", "objective", "train"}


def _key(statement: ast.Statement) -> str:
    if isinstance(statement, ast.Schedule):
        return f"schedule {statement.name}"
    if isinstance(statement, ast.Net):
        return f"net {statement.name}"
    if isinstance(statement, ast.Generate):
        return "generate start" if _is_start(statement) else "generate step"
    return _SINGLE[type(statement)]


def _is_start(statement: ast.Generate) -> bool:
    index = statement.level.index
    return not any(isinstance(n, ast.Name) and n.id == "t" for n in _walk(index))


def _walk(node: Any):
    stack = [node]
    while stack:
        item = stack.pop()
        yield item
        if isinstance(item, ast.Binary):
            stack += [item.left, item.right]
        elif isinstance(item, ast.Unary):
            stack.append(item.operand)
        elif isinstance(item, ast.Call):
            stack += list(item.args) + [k.value for k in item.kwargs]
        elif isinstance(item, ast.Subscript):
            stack += [item.base, *item.indices]
        elif isinstance(item, ast.Slice):
            stack += [i for i in (item.start, item.stop) if i is not None]
        elif isinstance(item, ast.Vector):
            stack += list(item.items)


def _describe(key: str) -> str:
    return {
        "message": "data/space declaration",
        "steps": "steps declaration",
        "destroy": "destroy kernel",
        "generate step": "generation kernel (generate x[t-1])",
        "generate start": "generation start (generate x[T])",
    }.get(key, key)


def _collect(model: ast.Model, parent: ModelIR | None, source: str) -> dict[str, ast.Statement]:
    statements: dict[str, ast.Statement] = {}
    ancestors = []  # parent, grandparent, …: each adds to (or replaces) what came before
    while parent is not None:
        ancestors.append(parent)
        parent = parent.parent
    for ancestor in reversed(ancestors):
        for statement in ancestor.syntax.statements:
            statements[_key(statement)] = statement
    parent = ancestors[0] if ancestors else None
    own: dict[str, ast.Statement] = {}
    for statement in model.statements:
        key = _key(statement)
        if key in own:
            raise DtgNameError(
                f"{_describe(key)} given twice"
                if " " not in key or key.startswith("generate")
                else f"{key.split()[0]} '{key.split()[1]}' is defined twice",
                statement.span,
                source,
                related=[(own[key].span, "first given here")],
            )
        if parent is not None and key in statements and key not in _CHILD_MAY_REPLACE:
            raise DtgCheckError(
                f"model '{model.name}' cannot replace the {_describe(key)} of its parent "
                f"'{parent.name}'",
                statement.span,
                source,
                hints=[
                    "a child model inherits every statement of its parent and may add a reward, "
                    "schedules and nets, and replace the objective and the train options"
                ],
            )
        own[key] = statement
    statements.update(own)
    return statements


# ----------------------------------------------------------------------------- the model


def check_model(model: ast.Model, source: str, parent: ModelIR | None = None) -> ModelIR:
    """Check one model (its parent already checked) and build its IR."""
    statements = _collect(model, parent, source)

    def missing(key: str, message: str, hint: str) -> DtgCheckError:
        return DtgCheckError(message, model.name_span, source, hints=[hint])

    declaration = statements.get("message")
    if declaration is None:
        raise missing(
            "message",
            f"model '{model.name}' declares no message",
            "add 'data x : real[2] ~ moons()' (training data) or 'space x : real[2]' (a sampler's target)",
        )
    steps_statement = statements.get("steps")
    if steps_statement is None:
        raise missing(
            "steps", f"model '{model.name}' has no 'steps' declaration", "add: steps T = 100"
        )
    if steps_statement.value > MAX_STEPS:
        raise DtgRangeError(
            f"steps {steps_statement.name} = {steps_statement.value} is too many "
            f"(at most {MAX_STEPS:,})",
            steps_statement.span,
            source,
        )
    steps, steps_name = steps_statement.value, steps_statement.name
    message_name = declaration.name
    for key, statement in statements.items():
        name = getattr(statement, "name", None)
        if key.startswith(("schedule ", "net ")) and (
            name in _RESERVED or name in (message_name, steps_name)
        ):
            raise DtgNameError(
                f"'{name}' cannot name a {key.split()[0]}: it is already "
                + (
                    "the message"
                    if name == message_name
                    else "T"
                    if name == steps_name
                    else "built in"
                ),
                statement.span,
                source,
            )

    space = _space(declaration.space)
    if isinstance(declaration.space, ast.TimeType):
        raise DtgTypeError("a message cannot have the space 'time'", declaration.span, source)

    schedules = {s.name: s for k, s in statements.items() if k.startswith("schedule ")}
    _check_schedule_cycles(schedules, source)
    nets = {s.name: _net_spec(s, source) for k, s in statements.items() if k.startswith("net ")}
    targets = {name: target.dim for name, target in TARGETS.items()}
    builder = symbolic.SympyBuilder(
        steps,
        steps_name,
        {n: (s.params, s.body) for n, s in schedules.items()},
        message_name,
        nets=frozenset(nets),
    )

    schedule_params = {n: s.params for n, s in schedules.items()}  # built once: shared, read-only

    registered = frozenset(plugins.rewards())  # the user's Python rewards (dtg.plugins)

    def scope(**extra: Any) -> Scope:
        extra.setdefault("params", {"t": SCALAR})
        extra.setdefault("plugins", registered)
        return Scope(
            message_name,
            steps_name,
            steps,
            schedule_params,
            nets,
            targets,
            index_of=builder.index,
            **extra,
        )

    # Schedules: scalar functions of their parameters, without nets or messages.
    schedule_tables: dict[str, np.ndarray] = {}
    schedule_exprs: dict[str, sp.Expr] = {}
    schedule_defs: dict[str, ScheduleDef] = {}
    for name, schedule in schedules.items():
        if len(set(schedule.params)) != len(schedule.params):
            raise DtgNameError(f"schedule '{name}' repeats a parameter", schedule.span, source)
        checker = ExprChecker(
            scope(
                params={p: SCALAR for p in schedule.params},
                allow_nets=False,
                level_rule="a schedule is a function of t alone; it cannot read the message",
                schedule_params=True,
            ),
            source,
        )
        body = checker.scalar(schedule.body, f"the schedule '{name}'")
        schedule_defs[name] = ScheduleDef(
            name, tuple(schedule.params), body, expr_to_source(schedule.body), schedule.span
        )
        if len(schedule.params) == 1:
            expr = builder.build(schedule.body, {schedule.params[0]: symbolic.T_SYMBOL})
            schedule_exprs[name] = expr
            schedule_tables[name] = symbolic.table(expr, steps)
            if not np.isfinite(schedule_tables[name][1:]).any():
                raise DtgRangeError(
                    f"the schedule '{name}' has no finite value at any level t = 1..{steps_name}",
                    schedule.body.span,
                    source,
                    hints=[
                        "check for a division by zero, the log/sqrt of a negative number, or a "
                        "value beyond float64's range (about 1.8e308)"
                    ],
                )

    data_source = None
    if isinstance(declaration, ast.Data) and declaration.source is not None:
        data_source = _check_source(declaration, space, source, ExprChecker(scope(), source))

    reward = _check_reward(statements.get("reward"), space, scope, source)
    if isinstance(declaration, ast.SpaceDecl) and reward is None:
        raise DtgCheckError(
            f"model '{model.name}' declares 'space {message_name}' but no reward",
            declaration.span,
            source,
            hints=[
                f"a space is a sampler's target: add 'reward logr({message_name}) = …', "
                f"or use 'data {message_name} : …' to train on data"
            ],
        )

    kernels = KernelChecker(
        model, statements, space, steps, steps_name, message_name, builder, scope, source
    )
    destroy, level_space = kernels.destroy()
    start = kernels.start(destroy, level_space)
    generate = kernels.generate(destroy, level_space)
    kernels.check_ends(destroy, start)
    marginals = kernels.marginals(destroy)

    objective = _check_objective(
        statements.get("objective"),
        model,
        source,
        {
            "role": "data" if isinstance(declaration, ast.Data) else "target",
            "destroy": destroy.family,
            "generate": generate.family,
            "start": start.family,
            "learned_destroy": destroy.learned,
            "reward": reward is not None,
            "parent": parent is not None,
            "space_kind": space.kind,
        },
    )
    if objective.kind is ObjectiveKind.MASKING:
        problem, hint, weights = masking_problem(objective.options, destroy, start, steps)
        if problem:
            statement = statements["objective"]
            where = next((k.span for k in statement.kwargs if k.name == "time"), None)
            raise DtgObjectiveError(
                f"objective masking does not fit this model: {problem}",
                where if where is not None and "time" in problem else statement.span,
                source,
                hints=[hint] if hint else [],
            )
        if weights is not None:
            marginals = {**marginals, "continuous_weight": weights}
    train = _check_options(
        statements.get("train").options if statements.get("train") else (),
        TRAIN_OPTIONS,
        "train",
        source,
        ExprChecker(scope(), source),
    )
    message = Message(
        message_name,
        space,
        level_space,
        Role.DATA if isinstance(declaration, ast.Data) else Role.TARGET,
        data_source,
        declaration.span,
        masked=destroy.family in (Family.MASK, Family.MASH_LAST),
    )
    return ModelIR(
        name=model.name,
        parent=parent,
        steps=steps,
        steps_name=steps_name,
        message=message,
        schedules=schedule_tables,
        schedule_exprs=schedule_exprs,
        nets=nets,
        destroy=destroy,
        generate=generate,
        start=start,
        reward=reward,
        objective=objective,
        train=train,
        marginals=marginals,
        schedule_defs=schedule_defs,
        span=model.span,
        syntax=model,
    )


def _space(node: ast.SpaceType) -> Space:
    if isinstance(node, ast.RealSpace):
        return Space("real", node.shape)
    if isinstance(node, ast.TokenSpace):
        return Space("token", node.shape, node.vocab)
    return Space("time")


def _check_schedule_cycles(schedules: dict[str, ast.Schedule], source: str) -> None:
    """Refuse schedules defined through themselves, chains of calls deeper than
    :data:`MAX_SCHEDULE_DEPTH`, and schedules whose inlined form (each call replaced by the
    callee's body) exceeds :data:`MAX_INLINED_NODES` nodes — ``s2(t) = s1(t) + s1(t)`` and so on
    doubles at each link. Iterative, so a chain of any length is a message, not a RecursionError.
    """
    calls: dict[str, list[str]] = {}
    own_nodes: dict[str, int] = {}
    for name, schedule in schedules.items():
        nodes = list(_walk(schedule.body))
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


def _net_spec(statement: ast.Net, source: str) -> NetSpec:
    inputs = tuple(_space(s) for s in statement.inputs)
    output = _space(statement.output)
    checker = ExprChecker(Scope("", "", 0, {}, {}, {}), source)
    if statement.arch.args:
        raise DtgTypeError(
            f"{statement.arch.func}(…) takes keyword options only, e.g. mlp(hidden = [128, 128])",
            statement.arch.args[0].span,
            source,
        )
    options = {k.name: option_value(k.value, checker) for k in statement.arch.kwargs}

    try:
        count = count_parameters(
            statement.arch.func, options, inputs, output
        )
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


def _check_source(
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
        options = bind_options(call.func, args, kwargs)
        check_source(call.func, options, space)
    except DataError as error:
        raise DtgDataError(
            error.message, call.span, source, hints=[error.hint] if error.hint else []
        ) from None
    return DataSourceSpec(call.func, dict(options), call.span)


def _check_reward(
    statement: ast.Reward | None, space: Space, scope, source: str
) -> RewardSpec | None:
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
    return RewardSpec(
        statement.name,
        params[0] if params else None,
        body,
        statement.span,
        target,
        expr_to_source(statement.body),
    )


def _check_options(
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


def _check_objective(
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
    options = _check_options(
        tuple(ast.Option(k.name, k.value, span=k.span) for k in statement.kwargs),
        OBJECTIVE_OPTIONS[kind],
        f"objective {kind.value}",
        source,
        checker,
        positional=statement.args,
    )
    return ObjectiveSpec(kind, options, statement.span)


# Re-exported for the kernel checker.
__all__ += ["option_value", "Channel", "Direction", "DtgLevelError"]

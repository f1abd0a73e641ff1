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

from typing import Any

import numpy as np
import sympy as sp

from .. import plugins
from ..errors import (
    DtgCheckError,
    DtgNameError,
    DtgObjectiveError,
    DtgRangeError,
    DtgTypeError,
    did_you_mean,
)
from ..ir import (
    Family,
    Message,
    ModelIR,
    ObjectiveKind,
    ScheduleDef,
)
from ..ir.options import Role
from ..syntax import ast
from ..syntax.printer import expr_to_source
from ..syntax.transform import short_number
from ..targets import TARGETS
from . import symbolic
from .chain import check_chain
from .collect import collect
from .declarations import (
    check_data_source,
    check_inlined_depth,
    check_reward,
    check_schedule_cycles,
    net_spec,
    option_value,
    space_of,
)
from .exprs import ExprChecker
from .kernels import KernelChecker
from .objectives import (
    TRAIN_OPTIONS,
    masking_problem,
    scoring_problem,
)
from .options import check_objective, check_options
from .scope import CHANNELS, CONSTANT_NAMES, REDUCTIONS, SCALAR, Scope
from .sympy_fold import SympyFold

__all__ = ["check_module", "check_model", "MAX_STEPS"]

#: Largest ``T`` accepted: tables and trajectories are O(T).
MAX_STEPS = 100_000
#: The longest chain of ``extends`` (model, parent, grandparent, …).
MAX_EXTENDS_DEPTH = 32

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


# ----------------------------------------------------------------------------- the model


def check_model(model: ast.Model, source: str, parent: ModelIR | None = None) -> ModelIR:
    """Check one model (its parent already checked) and build its IR."""
    statements = collect(model, parent, source)

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
            f"steps {steps_statement.name} = "
            f"{short_number(steps_statement.text or str(steps_statement.value))} is too many "
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

    space = space_of(declaration.space)
    if isinstance(declaration.space, ast.TimeType):
        raise DtgTypeError("a message cannot have the space 'time'", declaration.span, source)

    schedules = {s.name: s for k, s in statements.items() if k.startswith("schedule ")}
    check_schedule_cycles(schedules, source)
    check_inlined_depth(statements, schedules, source, model.span.file)
    nets = {s.name: net_spec(s, source) for k, s in statements.items() if k.startswith("net ")}
    targets = {name: target.dim for name, target in TARGETS.items()}
    builder = symbolic.SympyBuilder(
        steps,
        steps_name,
        {n: (s.params, s.body) for n, s in schedules.items()},
        message_name,
    )

    schedule_params = {n: s.params for n, s in schedules.items()}  # built once: shared, read-only

    registered = frozenset(plugins.rewards())  # the user's Python rewards (dtg.plugins)

    declared_reward: list[tuple[str, Any] | None] = [None]  # set once the reward is checked

    def scope(**extra: Any) -> Scope:
        extra.setdefault("params", {"t": SCALAR})
        extra.setdefault("plugins", registered)
        extra.setdefault("reward", declared_reward[0])
        extra.setdefault("positions", space.size if space.kind == "token" else None)
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
    # Tabulated once every schedule is lowered: a schedule may call one defined after it.
    for name, schedule in schedules.items():
        if len(schedule.params) == 1:
            fold = SympyFold(steps, schedule_defs, params={schedule.params[0]: symbolic.T_SYMBOL})
            expr = fold.fold(schedule_defs[name].body)
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
        data_source = check_data_source(declaration, space, source, ExprChecker(scope(), source))

    sampler = isinstance(declaration, ast.SpaceDecl)
    reward = check_reward(statements.get("reward"), space, scope, source, sampler=sampler)
    if reward is not None:
        declared_reward[0] = (reward.name, space)
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
        model, statements, space, steps, steps_name, message_name, builder, scope, source,
        schedule_defs,
    )  # fmt: skip
    found = kernels.level_statements()
    chain = None
    if found is None:
        destroy, level_space = kernels.destroy()
        start = kernels.start(destroy, level_space)
        generate = kernels.generate(destroy, level_space)
        kernels.check_ends(destroy, start)
        marginals = kernels.marginals(destroy)
        kernels.check_guess(generate, destroy)
    else:
        chain = check_chain(kernels, found)
        destroy, generate, start = chain.destroy, chain.generate, chain.start
        level_space, marginals = chain.spaces[-1], chain.marginals

    objective = check_objective(
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
            "per_level": found.first().span.line if found is not None else None,
        },
    )
    if objective.kind is ObjectiveKind.MASKING:
        problem, hint, weights = masking_problem(objective.options, destroy, start, steps)
        if problem:
            statement = statements["objective"]
            # at the option the problem names (time = continuous, loss = epsilon_hybrid)
            where = next((k.span for k in statement.kwargs if f"{k.name} =" in problem), None)
            raise DtgObjectiveError(
                f"objective masking does not fit this model: {problem}",
                where if where is not None else statement.span,
                source,
                hints=[hint] if hint else [],
            )
        if weights is not None:
            marginals = {**marginals, "continuous_weight": weights}
    train = check_options(
        statements.get("train").options if statements.get("train") else (),
        TRAIN_OPTIONS,
        "train",
        source,
        ExprChecker(scope(), source),
    )
    problem, key, hint = scoring_problem(objective.options, destroy, generate)
    if problem:
        where = next(k.span for k in statements["objective"].kwargs if k.name == key)
        raise DtgObjectiveError(problem, where, source, hints=[hint])
    message = Message(
        message_name,
        space,
        level_space,
        Role.DATA if isinstance(declaration, ast.Data) else Role.TARGET,
        data_source,
        declaration.span,
        masked=destroy.family in (Family.MASK, Family.MASH_LAST, Family.MASH_RANDOM),
        level_spaces=chain.spaces if chain is not None else (),
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
        destroy_levels=chain.destroy_levels if chain is not None else (),
        generate_levels=chain.generate_levels if chain is not None else (),
        span=model.span,
        syntax=model,
    )


__all__ += ["option_value"]

"""A model's chain of kernels, level by level, when some level has a kernel of its own.

:func:`check_chain` walks the levels ``l = 1 … T`` in order: ``x[l]``'s space is inferred from
the kernel that defines it (its own ``destroy x[l] ~ …`` or the template ``destroy x[t]``), and
generation is then checked against those spaces (``generate x[l-1]`` reads ``x[l]`` and must
produce ``x[l-1]``'s space). A level defined by no kernel, or by two, is an error (see
:mod:`dtg.check.levels`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import DtgCheckError, DtgTypeError
from ..ir import Channel, Direction, Family, Space
from ..syntax import ast
from .kernels import KernelChecker
from .levels import LevelStatements

__all__ = ["Chain", "check_chain"]

_GAUSSIAN = (Family.LINEAR_GAUSSIAN, Family.NORMAL)


@dataclass(frozen=True)
class Chain:
    """The checked kernels of a model with per-level kernels.

    :param destroy: the destruction template, or level 1's channel when there is none.
    :param generate: the generation template, or level 1's channel when there is none.
    :param start: the generation start (``x[T]``).
    :param destroy_levels: the channel of each level ``l = 1 … T`` (index ``l - 1``).
    :param generate_levels: the channel that defines ``x[l-1]`` from ``x[l]`` (index ``l - 1``).
    :param spaces: the space of each level ``x[0] … x[T]``.
    :param marginals: none: the chain's levels have no closed form (a linear-Gaussian
        template's own tables are built with its channel).
    """

    destroy: Channel
    generate: Channel
    start: Channel
    destroy_levels: tuple[Channel, ...]
    generate_levels: tuple[Channel, ...]
    spaces: tuple[Space, ...]
    marginals: dict[str, np.ndarray]


def check_chain(kernels: KernelChecker, found: LevelStatements) -> Chain:
    """Check every level's destruction and generation kernel, the start and the two ends.

    :param kernels: the model's kernel checker.
    :param found: the per-level statements (:meth:`~dtg.check.levels.LevelKernels.level_statements`).
    :returns: the chain.
    """
    steps = kernels.steps
    template, reads, template_space = None, None, None
    spaces = [kernels.space]
    destroy_levels: list[Channel] = []
    for level in range(1, steps + 1):
        if level in found.destroy:
            channel, space = kernels.destroy_level(found.destroy[level], level, spaces[-1])
        elif "destroy" not in kernels.statements:
            raise kernels.missing_level(Direction.DESTROY, level)
        else:
            if template is None:  # checked at the first level it covers, on that level's space
                reads = spaces[-1]
                template, template_space = _template_on(kernels, reads)
            if spaces[-1] not in (reads, template_space):
                raise _misfit(kernels, template, level - 1, spaces[-1], found)
            channel, space = template, template_space
        destroy_levels.append(channel)
        spaces.append(space)

    if template is None and "destroy" in kernels.statements:
        raise _unused(kernels, kernels.statements["destroy"], "destroy", "x[t]")
    generate_template = None
    covered = [level for level in range(1, steps + 1) if level not in found.generate]
    if not covered and "generate step" in kernels.statements:
        raise _unused(kernels, kernels.statements["generate step"], "generate", "x[t-1]")
    if covered and "generate step" in kernels.statements:
        first = covered[0]
        statement = kernels.statements["generate step"]
        if statement.kernel.stochastic and getattr(statement.kernel.body, "func", "") == "Guess":
            raise kernels.err(
                DtgTypeError,
                "Guess needs the destruction's posterior, which a chain with kernels for single "
                "levels does not have",
                statement.kernel.span,
                "write the generation kernel out, e.g. generate x[t-1] ~ Normal(mu(x[t], t), s)",
            )
        generate_template = kernels.generate(destroy_levels[0], spaces[first], spaces[first - 1])
        if generate_template.family not in _GAUSSIAN:
            raise kernels.err(
                DtgTypeError,
                "beside kernels for single levels, the generation template must be a Normal, "
                f"not {generate_template.family.label}",
                generate_template.span,
                f"a token {kernels.message}[0] gets a kernel of its own: generate "
                f"{kernels.message}[0] ~ Categorical(logits = …)",
            )
        for level in covered:
            if (spaces[level], spaces[level - 1]) != (spaces[first], spaces[first - 1]):
                raise _generate_misfit(kernels, generate_template, first, level, spaces)
    generate_levels: list[Channel] = []
    for level in range(1, steps + 1):
        if level in found.generate:
            channel = kernels.generate_level(
                found.generate[level], level, spaces[level], spaces[level - 1]
            )
        elif generate_template is not None:
            channel = generate_template
        else:
            raise kernels.missing_level(Direction.GENERATE, level)
        generate_levels.append(channel)

    start = kernels.start(destroy_levels[-1], spaces[-1])
    covered = [level for level in range(1, steps + 1) if level not in found.destroy]
    last = destroy_levels[-1]
    if template is not None and template.family is Family.LINEAR_GAUSSIAN and last is not template:
        kernels.check_stds(template, False, covered)  # the levels check_ends does not see
    kernels.check_ends(last, start, covered if last is template else None)
    return Chain(
        destroy=template or destroy_levels[0],
        generate=generate_template or generate_levels[0],
        start=start,
        destroy_levels=tuple(destroy_levels),
        generate_levels=tuple(generate_levels),
        spaces=tuple(spaces),
        marginals={},
    )


def _template_on(kernels: KernelChecker, reads: Space) -> tuple[Channel, Space]:
    """The destroy template checked as reading ``reads`` at the first level it covers."""
    template, space = kernels.destroy(reads)
    if template.family not in _GAUSSIAN:
        raise kernels.err(
            DtgTypeError,
            "beside kernels for single levels, the destroy template must be a Normal, not "
            f"{template.family.label}",
            template.span,
            "give every level a kernel of its own, or drop the per-level kernels",
        )
    return template, space


def _unused(
    kernels: KernelChecker, statement: ast.Statement, verb: str, level: str
) -> DtgCheckError:
    """A template beside per-level kernels for every level would never run."""
    message = kernels.message
    defines = "x[1] … x[T]" if verb == "destroy" else "x[0] … x[T-1]"
    return kernels.err(
        DtgCheckError,
        f"the template {verb} {message}{level[1:]} covers no level: {defines} each have a "
        "kernel of their own",
        statement.span,
        "remove the template, or one of the per-level kernels it would replace",
    )


def _generate_misfit(
    kernels: KernelChecker, template: Channel, first: int, level: int, spaces: list[Space]
) -> DtgTypeError:
    """The generation template, checked on its first level, cannot also cover ``level``."""
    x = kernels.message
    return kernels.err(
        DtgTypeError,
        f"the generation template cannot cover both {x}[{first}] → {x}[{first - 1}] "
        f"({spaces[first]} → {spaces[first - 1]}) and {x}[{level}] → {x}[{level - 1}] "
        f"({spaces[level]} → {spaces[level - 1]})",
        template.span,
        f"give one of them a kernel of its own: generate {x}[{level - 1}] ~ … or generate "
        f"{x}[{first - 1}] ~ …",
    )


def _misfit(
    kernels: KernelChecker, template: Channel, level: int, space: Space, found: LevelStatements
) -> DtgTypeError:
    """The template cannot cover a level whose space another kernel set differently."""
    message = kernels.message
    where = found.destroy.get(level)
    by = f" (set by destroy {message}[{level}] on line {where.span.line})" if where else ""
    own = f"destroy {message}[{level + 1}] ~ …"
    return kernels.err(
        DtgTypeError,
        f"the template cannot cover this level: {message}[{level}] is {space}{by}, "
        "but the template reads levels of another space",
        template.span,
        f"give that level a kernel of its own: {own}",
    )

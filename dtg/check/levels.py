"""Kernels for one level: ``destroy x[1] ~ …``, ``generate x[0] ~ …`` (a hierarchical VAE).

A model may give a level its own kernel beside (or instead of) the template ``x[t]``: each such
kernel reads the level before it (``destroy x[2]`` reads ``x[1]``; ``generate x[1]`` reads
``x[2]``), and each level's space is inferred from the kernel that defines it, so the levels of
a 64 → 16 → 4 hierarchy have three spaces. A level without a kernel of its own takes the
template's, which then must read and write the spaces of the levels it covers. Every level
``x[1] … x[T]`` must be defined exactly once by destruction, and every level ``x[0] … x[T-1]``
by generation; ``generate x[T]`` stays the start.

Per-level kernels are ``Normal`` (destruction, and generation of real levels) or ``Categorical``
(generation of a token ``x[0]``), with nets anywhere: the family ``NORMAL``, no closed-form
marginals, so only the ``elbo`` objective trains them (the checker refuses the others).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import sympy as sp

from ..errors import DtgCheckError, DtgLevelError, DtgNameError, DtgRangeError, DtgTypeError
from ..ir import Channel, Direction, Family, Space
from ..ir import expr as ir
from ..syntax import ast
from ..syntax.printer import brief, expr_to_source, index_to_source
from . import symbolic
from .collect import LEVEL_KEYS
from .exprs import ExprChecker
from .kernel_base import KernelBase
from .scope import SCALAR

__all__ = ["LevelStatements", "LevelKernels"]


@dataclass
class LevelStatements:
    """The per-level statements of a model, by the level they define.

    :param destroy: level ``l`` (1..T) → ``destroy x[l] ~ …``.
    :param generate: level ``l`` (1..T) → ``generate x[l-1] ~ …`` (the kernel that reads x[l]).
    """

    destroy: dict[int, ast.Destroy] = field(default_factory=dict)
    generate: dict[int, ast.Generate] = field(default_factory=dict)

    def first(self) -> ast.Statement:
        """The first per-level statement in the source (where a refusal points)."""
        statements = [*self.destroy.values(), *self.generate.values()]
        return min(statements, key=lambda s: (s.span.line, s.span.column))


def _symbol(level: int) -> sp.Symbol:
    return sp.Symbol(f"x_{{{level}}}")


def _key(level: int) -> str:
    """The lowering's name of level ``level``."""
    return ir.Level(ir.LevelAnchor.ABSOLUTE, level).key


class LevelKernels(KernelBase):
    """The checks of per-level kernels (see the module docstring)."""

    def level_statements(self) -> LevelStatements | None:
        """Sort the statements for one level by the level they define (``T`` is known here).

        A ``generate x[2]`` with ``T = 2`` is the start. Duplicates (``x[1]`` and ``x[T-1]``
        when T = 2) and levels outside the chain are errors at the statement.

        :returns: the statements, or ``None`` when the model has none.
        """
        found = LevelStatements()
        own = {id(statement) for statement in self.model.statements}
        for key, statement in list(self.statements.items()):
            if not key.startswith(LEVEL_KEYS):
                continue
            level = self._fixed_level(statement)
            destroy = isinstance(statement, ast.Destroy)
            if not destroy and level == self.steps:
                if "generate start" in self.statements:
                    self._twice(statement, self.statements["generate start"], "generation start")
                self.statements["generate start"] = statement
                del self.statements[key]
                continue
            low, high = (1, self.steps) if destroy else (0, self.steps - 1)
            if not low <= level <= high:
                verb = "destroy" if destroy else "generate"
                what = (
                    f"destruction defines {self.message}[1] … {self.message}[{self.steps_name}]"
                    if destroy
                    else f"generation defines {self.message}[0] … {self.message}[{self.steps_name}]"
                )
                raise self.err(
                    DtgLevelError,
                    f"{verb} {self.message}[{level}] is outside the chain: {what} "
                    f"({self.steps_name} = {self.steps})",
                    statement.level.span,
                )
            table = found.destroy if destroy else found.generate
            at = level if destroy else level + 1
            if at in table:
                if (id(statement) in own) != (id(table[at]) in own):  # a parent's, respelt
                    raise self.err(
                        DtgCheckError,
                        f"model '{self.model.name}' cannot replace the kernel of "
                        f"{self.message}[{level}] that its parent defines",
                        statement.span,
                        "a child model inherits every kernel of its parent",
                    )
                self._twice(statement, table[at], f"kernel of {self.message}[{level}]")
            table[at] = statement
        if not found.destroy and not found.generate:
            return None
        return found

    def _fixed_level(self, statement: ast.Destroy | ast.Generate) -> int:
        level = statement.level
        self._own_level(level)
        value = self.builder.index(level.index)
        if not getattr(value, "is_Integer", False):
            shown = brief(index_to_source(level.index))
            raise self.err(
                DtgLevelError,
                f"the level {self.message}[{shown}] is not a whole number",
                level.span,
            )
        return int(value)

    def _twice(self, statement: ast.Statement, first: ast.Statement, what: str) -> None:
        raise DtgNameError(
            f"{what} given twice",
            statement.span,
            self.source,
            related=[(first.span, "first given here")],
        )

    # ------------------------------------------------------------------ the kernels
    def destroy_level(
        self, statement: ast.Destroy, level: int, previous: Space
    ) -> tuple[Channel, Space]:
        """``destroy x[level] ~ Normal(mean, std)`` reading ``x[level-1]`` of space ``previous``.

        :returns: the channel (family ``NORMAL``) and the space of ``x[level]``: the mean's (or
            ``previous`` for a scalar mean).
        """
        read = level - 1
        rule = f"destroy {self.message}[{level}] may read {self.message}[{read}] only"
        call = self._stochastic(statement, ("Normal",), f"the destroy kernel of x[{level}]")
        return self._normal_level(
            statement, call, Direction.DESTROY, read, level, previous, None, rule
        )

    def generate_level(
        self, statement: ast.Generate, level: int, source: Space, output: Space
    ) -> Channel:
        """``generate x[level-1] ~ …`` reading ``x[level]`` of space ``source`` and defining a
        level of space ``output`` (the destruction's)."""
        read, defined = level, level - 1
        rule = f"generate {self.message}[{defined}] may read {self.message}[{read}] only"
        allowed = ("Normal", "Categorical") if output.kind == "token" else ("Normal",)
        call = self._stochastic(statement, allowed, f"the generation kernel of x[{defined}]")
        if call.func == "Categorical":
            return self._categorical_level(statement, call, read, defined, source, output, rule)
        channel, _ = self._normal_level(
            statement, call, Direction.GENERATE, read, defined, source, output, rule
        )
        return channel

    def _stochastic(
        self, statement: ast.Destroy | ast.Generate, allowed: tuple[str, ...], where: str
    ) -> ast.Call:
        kernel = statement.kernel
        if not kernel.stochastic:
            raise self.err(
                DtgTypeError,
                f"{where} must be random (~ {allowed[0]}(…)): a kernel for one level is "
                f"{' or '.join(allowed)}",
                kernel.span,
            )
        return self._call(kernel, allowed, f"{where} (~)")

    def _checker(self, read: int, space: Space, rule: str) -> ExprChecker:
        return ExprChecker(
            self.scope(levels={sp.Integer(read): space}, level_rule=rule), self.source
        )

    def _normal_level(
        self, statement, call, direction: Direction, read: int, defined: int,
        source: Space, output: Space | None, rule: str,
    ) -> tuple[Channel, Space]:  # fmt: skip
        args = self._args(call, ("mean", "std"), 2)
        checker = self._checker(read, source, rule)
        lowered = {"mean": checker.lower(args["mean"])}
        mean_space = lowered["mean"].space
        space = output or (source if mean_space == SCALAR else mean_space)
        if space.kind != "real":
            raise self.err(
                DtgTypeError,
                f"Normal needs a real level, but {self.message}[{defined}] is {space}",
                call.span,
            )
        if mean_space not in (SCALAR, space):
            raise self.err(
                DtgTypeError,
                f"the mean is {mean_space}, but {self.message}[{defined}] is {space}",
                args["mean"].span,
                f"{self.message}[{defined}]'s space is set by destroy {self.message}[{defined}]",
            )
        lowered["std"] = checker.lower(args["std"])
        if lowered["std"].space not in (SCALAR, space):
            raise self.err(
                DtgTypeError,
                f"the std is {lowered['std'].space} but the mean is {space}",
                args["std"].span,
                "the std must be a scalar or have the mean's shape",
            )
        levels = {_key(read): _symbol(read)}
        mean, std = (self.sympy(lowered[k], levels) for k in ("mean", "std"))
        at = defined if direction is Direction.DESTROY else read  # the level t it runs at
        self._positive_std(std, args["std"], at, direction is Direction.DESTROY)
        nets = tuple(dict.fromkeys(checker.nets_called))
        shown_std = rf"\left({symbolic.latex(std)}\right)^{{2}}"
        latex = (
            rf"x_{{{defined}}} \sim \mathcal{{N}}\left({symbolic.latex(mean)},\ {shown_std}\right)"
        )
        channel = Channel(
            direction, Family.NORMAL, True, str(read), str(defined), expr_to_source(call),
            statement.span, {"mean": mean, "std": std}, {}, nets, {}, latex, lowered,
        )  # fmt: skip
        return channel, space

    def _positive_std(self, std: sp.Expr, node: ast.Expr, level: int, destroy: bool) -> None:
        """A std without nets or levels is a number at the kernel's level ``t = level``: it must
        be positive there, or 0 in the last destroy step into a point start (``= 0``), which
        :meth:`~dtg.check.kernels.KernelChecker.check_ends` then checks."""
        if symbolic.nets_in(std) or std.free_symbols - {symbolic.T_SYMBOL}:
            return
        values = np.ravel(symbolic.table(std, self.steps, start=1)[level])
        start = self.statements.get("generate start")
        point = destroy and level == self.steps and start is not None
        point = point and not start.kernel.stochastic
        bad = [v for v in values if not (v > 0 or (point and v == 0))]
        if bad:
            raise self.err(
                DtgRangeError,
                f"the std {brief(expr_to_source(node))} is {bad[0]:.6g} at level t = {level}: a "
                "standard deviation must be positive"
                + (" (0 only in the last destroy step, into a point start)" if destroy else ""),
                node.span,
            )

    def _categorical_level(
        self, statement, call, read: int, defined: int, source: Space, output: Space, rule: str
    ) -> Channel:
        args = self._args(call, ("logits",), 1)
        checker = self._checker(read, source, rule)
        logits = checker.lower(args["logits"])
        expected = Space("real", (*output.shape, output.vocab))
        if logits.space not in (SCALAR, expected):
            raise self.err(
                DtgTypeError, f"logits are {logits.space}, expected {expected}", args["logits"].span
            )
        return Channel(
            Direction.GENERATE, Family.CATEGORICAL, True, str(read), str(defined),
            expr_to_source(call), statement.span, {}, {}, tuple(dict.fromkeys(checker.nets_called)),
            {}, rf"x_{{{defined}}} \sim \operatorname{{Categorical}}(\ldots)", {"logits": logits},
        )  # fmt: skip

    # ------------------------------------------------------------------ completeness
    def missing_level(self, direction: Direction, level: int) -> DtgCheckError:
        """No kernel defines a level: the model's name, with the statement to add."""
        if direction is Direction.DESTROY:
            wanted = f"destroy {self.message}[{level}] ~ Normal(…)"
            what = f"{self.message}[{level}] has no destroy kernel"
        else:
            wanted = f"generate {self.message}[{level - 1}] ~ Normal(…)"
            what = f"{self.message}[{level - 1}] has no generation kernel"
        return self.err(
            DtgCheckError,
            f"model '{self.model.name}': {what} (with kernels for single levels, every level "
            f"is defined exactly once, by its own kernel or by the template)",
            self.model.name_span,
            f"add: {wanted}, or a template for every level left",
        )

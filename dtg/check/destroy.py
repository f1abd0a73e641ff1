"""``destroy x[t] …``: Normal (linear-Gaussian when sympy proves ``mean = a(t)·x[t-1]``),
``Mask``, ``Shuffle`` or ``= MashLast(…)``, each classified into its channel family."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import sympy as sp

from ..errors import DtgRangeError, DtgTypeError
from ..ir import Channel, Direction, Family, Space
from ..syntax import ast
from ..syntax.printer import brief, expr_to_source
from . import components, exact, symbolic
from .exprs import ExprChecker
from .kernel_base import KernelBase, T
from .orders import order_net
from .positions import POSITION, position_keep_table, redraw_table, uses_position
from .scope import SCALAR

__all__ = ["DestroyKernels"]


class DestroyKernels(KernelBase):
    """The destroy kernel's checks."""

    # ------------------------------------------------------------------ destroy
    def destroy(self, reads: Space | None = None) -> tuple[Channel, Space]:
        """The template ``destroy x[t] ~ …`` and the space of the levels it defines.

        :param reads: the space of ``x[t-1]`` where it is checked: the data's by default; beside
            per-level kernels, that of the first level it covers.
        """
        statement = self.statements.get("destroy")
        if statement is None:
            raise self._missing(
                "destroy kernel",
                f"destroy {self.message}[t] ~ Normal(sqrt(1 - b) * {self.message}[t-1], sqrt(b))",
            )
        rule = f"a destroy kernel defines {self.message}[t] from {self.message}[t-1]: write destroy {self.message}[t] …"
        self._lhs(statement, T, rule)
        read_rule = f"destroy {self.message}[t] may read {self.message}[t-1] only"

        def checker(previous: Space) -> ExprChecker:
            return ExprChecker(
                self.scope(levels={T - 1: previous}, level_rule=read_rule), self.source
            )

        kernel = statement.kernel
        if not kernel.stochastic:
            call = self._call(kernel, ("MashLast",), "a deterministic destroy kernel (=)")
            return self._mash_last(statement, call, checker(self.space)), self.space
        call = self._call(
            kernel, ("Normal", "Mask", "Shuffle", "MashRandom"), "a destroy kernel (~)"
        )
        if call.func == "MashRandom":
            return self._mash_last(statement, call, checker(self.space)), self.space
        if call.func == "Normal":
            return self._destroy_normal(statement, call, checker, reads or self.space)
        return self._destroy_discrete(statement, call, checker(self.space)), self.space

    def _destroy_normal(
        self,
        statement: ast.Destroy,
        call: ast.Call,
        checker: Callable[[Space], ExprChecker],
        reads: Space,
    ) -> tuple[Channel, Space]:
        args = self._args(call, ("mean", "std"), 2)
        if reads.kind != "real":
            raise self.err(
                DtgTypeError, f"Normal needs a real message, but it is {reads}", call.span
            )
        first = checker(reads)
        lowered = {"mean": first.lower(args["mean"])}
        mean_space = lowered["mean"].space
        level_space = reads if mean_space == SCALAR else mean_space
        if level_space != reads and self.steps > 1:
            again = checker(level_space).infer(args["mean"])
            if again != level_space:
                raise self.err(
                    DtgTypeError,
                    f"the destroy kernel maps {reads} to {level_space} at t = 1 but "
                    f"{level_space} to {again} at later levels",
                    args["mean"].span,
                    "with steps T > 1 a template's levels after x[0] share one space; give each "
                    "level a kernel of its own (destroy x[1] ~ …, destroy x[2] ~ …) for a "
                    "hierarchy of spaces",
                )
        lowered["std"] = first.lower(args["std"])
        std_space = lowered["std"].space
        if std_space not in (SCALAR, level_space):
            raise self.err(
                DtgTypeError,
                f"the std is {std_space} but the mean is {level_space}",
                args["std"].span,
                "the std must be a scalar or have the mean's shape",
            )
        nets = tuple(dict.fromkeys(first.nets_called))
        mean = self.sympy(lowered["mean"], {"prev": symbolic.X_PREV})
        std = self.sympy(lowered["std"], {"prev": symbolic.X_PREV})
        params: dict[str, Any] = {"mean": mean, "std": std}
        tables: dict[str, np.ndarray] = {}
        a = symbolic.linear_coefficient(mean) if level_space == reads else None
        linear = a is not None and not symbolic.nets_in(std) and not std.has(symbolic.X_PREV)
        per_coordinate = None
        if level_space == reads and not nets and components.has_components(mean, std):
            per_coordinate = components.diagonal(
                lowered["mean"], lowered["std"], self.steps, self.schedule_defs, reads.shape
            )
            linear = per_coordinate is not None
            if linear and _uniform(*per_coordinate):  # the same a(t), s(t) for every coordinate
                a, std = (values.flat[0] for values in per_coordinate)
                per_coordinate = None
        what = f"the coefficient of {self.message}[t-1] in the mean"
        if linear and per_coordinate is None:
            params = {"a": a, "s": std}
            tables["a"] = self._table(a, what, args["mean"].span, lowered["mean"], "the mean")
            tables["s"] = self._table(std, "the std", args["std"].span, lowered["std"], "the std")
            family = Family.LINEAR_GAUSSIAN
        elif linear:
            params, tables = self._diagonal(per_coordinate, what, args, lowered, reads.shape)
            family = Family.LINEAR_GAUSSIAN
        else:
            family = Family.NORMAL
        shown_std = rf"\left({symbolic.latex(std)}\right)^{{2}}"
        if components.has_components(std):
            shown_std = rf"\operatorname{{diag}}\left({symbolic.latex(std)}\right)^{{2}}"
        latex = rf"x_{{t}} \sim \mathcal{{N}}\left({symbolic.latex(mean)},\ {shown_std}\right)"
        channel = Channel(
            Direction.DESTROY,
            family,
            True,
            "t-1",
            "t",
            expr_to_source(call),
            statement.span,
            params,
            tables,
            nets,
            {},
            latex,
            lowered,
        )
        return channel, level_space

    def _diagonal(
        self, per_coordinate, what: str, args, lowered, shape: tuple[int, ...]
    ) -> tuple[dict, dict]:
        """The parameters and ``[T + 1, *shape]`` tables of a per-coordinate kernel."""
        params: dict[str, Any] = {}
        tables: dict[str, np.ndarray] = {}
        for name, values, whose, arg in (
            ("a", per_coordinate[0], what, "mean"),
            ("s", per_coordinate[1], "the std", "std"),
        ):
            params[name] = sp.ImmutableDenseNDimArray(list(values.flat), shape)
            columns = [
                self._table(
                    values[index],
                    f"{whose} (element [{', '.join(map(str, index))}])",
                    args[arg].span,
                    lowered[arg],
                    f"the {arg}",
                )
                for index in np.ndindex(*shape)
            ]
            tables[name] = np.stack(columns, axis=-1).reshape(self.steps + 1, *shape)
        return params, tables

    def _destroy_discrete(self, statement, call, checker: ExprChecker) -> Channel:
        names = ("x", "keep", "redraw") if call.func == "Mask" else ("x", "keep")
        args = self._args(call, names, 2)
        if self.space.kind != "token":
            raise self.err(
                DtgTypeError,
                f"{call.func} needs a token message, but it is {self.space}",
                call.span,
                "declare the data as token(V)[L]",
            )
        if not self._is_level(args["x"], T - 1):
            raise self.err(
                DtgTypeError,
                f"the first argument of {call.func} must be {self.message}[t-1]",
                args["x"].span,
            )
        # The keep may read the token position i (a hyperschedule: positions.py).
        keep_checker = ExprChecker(
            self.scope(levels={T - 1: self.space}, position=POSITION), self.source
        )
        lowered = {
            "x": checker.lower(args["x"]),
            "keep": keep_checker.scalar(args["keep"], f"the keep probability of {call.func}"),
        }
        if keep_checker.nets_called:
            raise self.err(
                DtgTypeError,
                f"the keep probability of {call.func} cannot use nets",
                args["keep"].span,
            )
        keep = self.sympy(lowered["keep"])
        if keep.has(symbolic.X_PREV):
            raise self.err(
                DtgTypeError, "the keep probability cannot depend on the message", args["keep"].span
            )
        shown = brief(expr_to_source(args["keep"]))
        if uses_position(lowered["keep"]):
            length = self.space.size
            flat = position_keep_table(
                keep, self.steps, length, shown, args["keep"].span, self.source
            )
            table = flat.reshape(self.steps + 1, *self.space.shape)
            return self._discrete_channel(statement, call, keep, table, lowered, args)
        table = self._table(
            keep, "keep", args["keep"].span, lowered["keep"], "the keep probability"
        )
        tries = 0  # sympy's exact evaluations before t = T (a keep of 1 - 1e-13 everywhere)
        for t in range(1, self.steps + 1):
            value = table[t]
            final = t == self.steps
            for target in (0.0, 1.0):  # keep = 0 and keep = 1 decided exactly
                if exact.near(value, target) and (final or value < 0 or tries < exact.TRIES):
                    tries += not final
                    proven = exact.exactly(keep, t, target)
                    if proven:
                        table[t] = value = target
                    elif value < 0:
                        message, hint = exact.within_rounding(
                            f"the keep probability {shown}", value, target, t, proven
                        )
                        raise self.err(DtgRangeError, message, args["keep"].span, hint)
            if not (0 <= value <= 1 + exact.ROUNDING) or (value <= 0 and not final):
                if value < 0:
                    where = f"the keep probability {shown}"
                    self._blame_schedule(lowered["keep"], t, where, args["keep"].span, True)
                raise self.err(
                    DtgRangeError,
                    f"keep = {value:.6g} at level t = {t}: it must satisfy 0 < keep ≤ 1"
                    + (" (keep = 0 is allowed only at t = T)" if value <= 0 else ""),
                    args["keep"].span,
                )
        table = np.clip(table, 0.0, 1.0)
        return self._discrete_channel(statement, call, keep, table, lowered, args)

    def _discrete_channel(
        self, statement, call, keep: sp.Expr, table: np.ndarray, lowered, args
    ) -> Channel:
        """The ``Mask``/``Shuffle`` channel with its checked keep table (``[T + 1]``, or
        ``[T + 1, *shape]`` for a per-position keep), and a hybrid ``Mask``'s ``redraw``."""
        family = Family.MASK if call.func == "Mask" else Family.SHUFFLE
        params, tables, shown = {"keep": keep}, {"keep": table}, symbolic.latex(keep)
        if "redraw" in args:
            params["redraw"], tables = self._redraw(args["redraw"], table, lowered)
            shown += rf",\ {symbolic.latex(params['redraw'])}"
        latex = rf"x_{{t}} \sim \operatorname{{{call.func}}}\left(x_{{t-1}},\ {shown}\right)"
        return Channel(
            Direction.DESTROY,
            family,
            True,
            "t-1",
            "t",
            expr_to_source(call),
            statement.span,
            params,
            tables,
            (),
            {},
            latex,
            lowered,
        )

    def _redraw(
        self, node: ast.Expr, keep: np.ndarray, lowered: dict
    ) -> tuple[sp.Expr, dict[str, np.ndarray]]:
        """A hybrid ``Mask``'s ``redraw`` (lowered into ``lowered``): its sympy form and the
        keep and redraw tables, both ``[T + 1, *shape]`` when either is per position."""
        checker = ExprChecker(self.scope(levels={}, position=POSITION), self.source)
        lowered["redraw"] = checker.scalar(node, "the redraw probability of Mask")
        redraw = self.sympy(lowered["redraw"])
        if checker.nets_called or redraw.has(symbolic.X_PREV):
            raise self.err(
                DtgTypeError, "the redraw probability is a fixed schedule of t (and i)", node.span
            )
        shown = brief(expr_to_source(node))
        flat = redraw_table(redraw, keep, self.space.size, shown, node.span, self.source)
        shape = (self.steps + 1, *self.space.shape)
        if keep.ndim == 1 and not uses_position(lowered["redraw"]):
            return redraw, {"keep": keep, "redraw": flat[:, 0].copy()}
        full = np.broadcast_to(keep.reshape(self.steps + 1, -1), flat.shape).reshape(shape)
        return redraw, {"keep": full.copy(), "redraw": flat.reshape(shape)}

    def _mash_last(self, statement, call, checker: ExprChecker) -> Channel:
        """``= MashLast(x[t-1])`` (the last unmasked position) or ``~ MashRandom(x[t-1])`` (one
        unmasked position chosen uniformly): one position masked per level, ``T = L``."""
        name = call.func
        args = self._args(call, ("x", "order") if name == "MashRandom" else ("x",), 1)
        if self.space.kind != "token":
            raise self.err(
                DtgTypeError, f"{name} needs a token message, but it is {self.space}", call.span
            )
        if not self._is_level(args["x"], T - 1):
            raise self.err(
                DtgTypeError,
                f"the argument of {name} must be {self.message}[t-1]",
                args["x"].span,
            )
        lowered = {"x": checker.lower(args["x"])}
        length = self.space.size
        if self.steps != length:
            raise self.err(
                DtgRangeError,
                f"{name} masks one position per level, so steps {self.steps_name} must equal the "
                f"number of positions ({length}), not {self.steps}",
                call.span,
            )
        random = name == "MashRandom"
        relation = r"\sim" if random else "="
        nets: tuple[str, ...] = ()
        options: dict = {}
        if "order" in args:  # a learned order (check/orders.py)
            options["order"] = order_net(self, args["order"], self.space, name)
            nets = (options["order"],)
        return Channel(
            Direction.DESTROY,
            Family.MASH_RANDOM if random else Family.MASH_LAST,
            random,
            "t-1",
            "t",
            expr_to_source(call),
            statement.span,
            {},
            {},
            nets,
            options,
            rf"x_{{t}} {relation} \operatorname{{{name}}}\left(x_{{t-1}}\right)",
            lowered,
        )


def _uniform(*arrays: np.ndarray) -> bool:
    """Whether every array holds one expression in every element."""
    return all(all(item == values.flat[0] for item in values.flat) for values in arrays)

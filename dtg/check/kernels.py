"""Check the three kernels of a model and classify each into a channel family.

* ``destroy x[t] ~ …`` reads ``x[t-1]`` only: ``Normal`` (linear-Gaussian when sympy proves
  ``mean = a(t)·x[t-1]`` with fixed ``a`` and ``s``), ``Mask``, ``Shuffle``, or ``= MashLast(…)``.
* ``generate x[t-1] ~ …`` reads ``x[t]`` only: ``Guess`` (the destruction's posterior at a
  predicted ``x[0]``), ``Normal`` or ``Categorical``.
* ``generate x[T] …`` reads nothing: ``= 0``, ``= masked``, ``~ Normal(c, c)``, ``~ Categorical(logits = c)``.

Parameters are tabulated over ``t = 0..T`` in float64 and range-checked on every level; a final
step into a singleton (std 0 or keep 0 at ``t = T``) is allowed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import sympy as sp

from .. import symbolic
from ..errors import DtgCheckError, DtgLevelError, DtgRangeError, DtgTypeError, Span, did_you_mean
from ..ir import Channel, Direction, Family, Space
from ..ir.options import Predict, Variance
from ..syntax import ast
from ..syntax.printer import expr_to_source
from .exprs import ExprChecker
from .scope import SCALAR, Scope

__all__ = ["KernelChecker", "PREDICT", "VARIANCE"]

PREDICT = tuple(str(p) for p in Predict)
VARIANCE = tuple(str(v) for v in Variance)
T = symbolic.T_SYMBOL


def _singleton_start(body: ast.Expr, span: Span, value: float | str, latex: str) -> Channel:
    """The channel of a deterministic start ``generate x[T] = value`` (a point: ``0``, ``masked``)."""
    return Channel(
        Direction.GENERATE, Family.SINGLETON, False, None, "T", expr_to_source(body), span,
        {"value": value}, {}, (), {}, latex,
    )  # fmt: skip


class KernelChecker:
    """Checks ``destroy``, ``generate`` and the start of one model (see the module docstring)."""

    def __init__(
        self,
        model: ast.Model,
        statements: dict[str, Any],
        space: Space,
        steps: int,
        steps_name: str,
        message: str,
        builder: symbolic.SympyBuilder,
        scope: Callable[..., Scope],
        source: str,
    ) -> None:
        self.model = model
        self.statements = statements
        self.space = space
        self.steps = steps
        self.steps_name = steps_name
        self.message = message
        self.builder = builder
        self.scope = scope
        self.source = source

    # ------------------------------------------------------------------ helpers
    def err(self, cls, message: str, span: Span, *hints: str):
        return cls(message, span, self.source, hints=list(hints))

    def _missing(self, what: str, example: str) -> DtgCheckError:
        return self.err(
            DtgCheckError,
            f"model '{self.model.name}' has no {what}",
            self.model.name_span,
            f"add: {example}",
        )

    def _lhs(self, statement, expected: sp.Expr, rule: str) -> None:
        level = statement.level
        if level.message != self.message:
            raise self.err(
                DtgLevelError,
                f"'{level.message}' is not the model's message '{self.message}'",
                level.span,
                f"write {self.message}[…]",
            )
        checker = ExprChecker(self.scope(), self.source)
        checker._check_index_names(level.index)
        index = self.builder.index(level.index)
        if sp.simplify(index - expected) != 0:
            shown = str(index).replace(" ", "")
            raise self.err(DtgLevelError, f"{rule}, not {self.message}[{shown}]", level.span)

    def _call(self, kernel: ast.Kernel, allowed: tuple[str, ...], where: str) -> ast.Call:
        body = kernel.body
        if not isinstance(body, ast.Call) or body.func not in allowed:
            shown = body.func if isinstance(body, ast.Call) else "an expression"
            raise self.err(
                DtgTypeError,
                f"{where}: expected one of {', '.join(allowed)}, got {shown}",
                body.span,
            )
        return body

    def _args(self, call: ast.Call, names: tuple[str, ...], required: int) -> dict[str, ast.Expr]:
        """Bind a channel call's arguments to parameter names."""
        if len(call.args) > len(names):
            raise self.err(
                DtgTypeError,
                f"{call.func} takes at most {len(names)} arguments ({', '.join(names)})",
                call.span,
            )
        bound = dict(zip(names, call.args, strict=False))
        for keyword in call.kwargs:
            if keyword.name not in names:
                hint = did_you_mean(keyword.name, names)
                raise self.err(
                    DtgTypeError,
                    f"{call.func} has no parameter '{keyword.name}'",
                    keyword.span,
                    hint or f"its parameters are: {', '.join(names)}",
                )
            if keyword.name in bound:
                raise self.err(
                    DtgTypeError, f"parameter '{keyword.name}' given twice", keyword.span
                )
            bound[keyword.name] = keyword.value
        for name in names[:required]:
            if name not in bound:
                raise self.err(
                    DtgTypeError,
                    f"{call.func} needs its parameter '{name}'",
                    call.span,
                    f"write {call.func}({', '.join(names[:required])})",
                )
        return bound

    def _is_level(self, node: ast.Expr, level: sp.Expr) -> bool:
        return (
            isinstance(node, ast.Subscript)
            and isinstance(node.base, ast.Name)
            and node.base.id == self.message
            and len(node.indices) == 1
            and not isinstance(node.indices[0], ast.Slice)
            and sp.simplify(self.builder.index(node.indices[0]) - level) == 0
        )

    def _table(self, expr: sp.Expr, what: str, span: Span) -> np.ndarray:
        if expr.free_symbols - {T}:
            raise self.err(DtgTypeError, f"{what} must be a function of t alone", span)
        values = symbolic.table(expr, self.steps, start=1)
        bad = [t for t in range(1, self.steps + 1) if not np.isfinite(values[t])]
        if bad:
            raise self.err(
                DtgRangeError,
                f"{what} is not a finite number at level t = {bad[0]} (value {values[bad[0]]})",
                span,
                "check for a division by zero or the log/sqrt of a non-positive number there",
            )
        return values

    # ------------------------------------------------------------------ destroy
    def destroy(self) -> tuple[Channel, Space]:
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
        call = self._call(kernel, ("Normal", "Mask", "Shuffle"), "a destroy kernel (~)")
        if call.func == "Normal":
            return self._destroy_normal(statement, call, checker)
        return self._destroy_discrete(statement, call, checker(self.space)), self.space

    def _destroy_normal(self, statement, call, checker) -> tuple[Channel, Space]:
        args = self._args(call, ("mean", "std"), 2)
        if self.space.kind != "real":
            raise self.err(
                DtgTypeError, f"Normal needs a real message, but it is {self.space}", call.span
            )
        first = checker(self.space)
        lowered = {"mean": first.lower(args["mean"])}
        mean_space = lowered["mean"].space
        level_space = self.space if mean_space == SCALAR else mean_space
        if level_space != self.space and self.steps > 1:
            again = checker(level_space).infer(args["mean"])
            if again != level_space:
                raise self.err(
                    DtgTypeError,
                    f"the destroy kernel maps {self.space} to {level_space} at t = 1 but "
                    f"{level_space} to {again} at later levels",
                    args["mean"].span,
                    "with steps T > 1 every level after x[0] must have one space",
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
        prev = {T - 1: symbolic.X_PREV}
        builder = self._builder(prev)
        mean = builder.build(args["mean"])
        std = builder.build(args["std"])
        params: dict[str, Any] = {"mean": mean, "std": std}
        tables: dict[str, np.ndarray] = {}
        a = symbolic.linear_coefficient(mean) if level_space == self.space else None
        linear = a is not None and not symbolic.nets_in(std) and not std.has(symbolic.X_PREV)
        if linear:
            params = {"a": a, "s": std}
            tables["a"] = self._table(a, "the mean coefficient a(t)", args["mean"].span)
            tables["s"] = self._table(std, "the std", args["std"].span)
            family = Family.LINEAR_GAUSSIAN
        else:
            family = Family.NORMAL
        latex = (
            rf"x_{{t}} \sim \mathcal{{N}}\left({symbolic.latex(mean)},\ "
            rf"\left({symbolic.latex(std)}\right)^{{2}}\right)"
        )
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

    def _builder(self, levels: dict) -> symbolic.SympyBuilder:
        b = self.builder
        return symbolic.SympyBuilder(b.steps, b.steps_name, b.schedules, b.message, levels, b.nets)

    def _destroy_discrete(self, statement, call, checker: ExprChecker) -> Channel:
        args = self._args(call, ("x", "keep"), 2)
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
        lowered = {
            "x": checker.lower(args["x"]),
            "keep": checker.scalar(args["keep"], f"the keep probability of {call.func}"),
        }
        if checker.nets_called:
            raise self.err(
                DtgTypeError,
                f"the keep probability of {call.func} cannot use nets",
                args["keep"].span,
            )
        keep = self.builder.build(args["keep"])
        if keep.has(symbolic.X_PREV):
            raise self.err(
                DtgTypeError, "the keep probability cannot depend on the message", args["keep"].span
            )
        table = self._table(keep, "keep", args["keep"].span)
        for t in range(1, self.steps + 1):
            value = table[t]
            final = t == self.steps
            if not (0 <= value <= 1 + 1e-12) or (value <= 0 and not final):
                raise self.err(
                    DtgRangeError,
                    f"keep = {value:.6g} at level t = {t}: it must satisfy 0 < keep ≤ 1"
                    + (" (keep = 0 is allowed only at t = T)" if value <= 0 else ""),
                    args["keep"].span,
                )
        family = Family.MASK if call.func == "Mask" else Family.SHUFFLE
        latex = rf"x_{{t}} \sim \operatorname{{{call.func}}}\left(x_{{t-1}},\ {symbolic.latex(keep)}\right)"
        return Channel(
            Direction.DESTROY,
            family,
            True,
            "t-1",
            "t",
            expr_to_source(call),
            statement.span,
            {"keep": keep},
            {"keep": np.clip(table, 0.0, 1.0)},
            (),
            {},
            latex,
            lowered,
        )

    def _mash_last(self, statement, call, checker: ExprChecker) -> Channel:
        args = self._args(call, ("x",), 1)
        if self.space.kind != "token":
            raise self.err(
                DtgTypeError, f"MashLast needs a token message, but it is {self.space}", call.span
            )
        if not self._is_level(args["x"], T - 1):
            raise self.err(
                DtgTypeError,
                f"the argument of MashLast must be {self.message}[t-1]",
                args["x"].span,
            )
        lowered = {"x": checker.lower(args["x"])}
        length = self.space.size
        if self.steps != length:
            raise self.err(
                DtgRangeError,
                f"MashLast masks one position per level, so steps {self.steps_name} must equal the "
                f"number of positions ({length}), not {self.steps}",
                call.span,
            )
        return Channel(
            Direction.DESTROY,
            Family.MASH_LAST,
            False,
            "t-1",
            "t",
            expr_to_source(call),
            statement.span,
            {},
            {},
            (),
            {},
            r"x_{t} = \operatorname{MashLast}\left(x_{t-1}\right)",
            lowered,
        )

    # ------------------------------------------------------------------ generation start
    def start(self, destroy: Channel, level_space: Space) -> Channel:
        statement = self.statements.get("generate start")
        if statement is None:
            example = "= masked" if self.space.kind == "token" else "~ Normal(0, 1)"
            raise self._missing(
                "generation start", f"generate {self.message}[{self.steps_name}] {example}"
            )
        self._lhs(
            statement,
            sp.Integer(self.steps),
            f"the generation start defines {self.message}[{self.steps_name}]",
        )
        checker = ExprChecker(
            self.scope(
                levels={}, level_rule="the generation start reads no level", allow_nets=False
            ),
            self.source,
        )
        kernel = statement.kernel
        body = kernel.body
        span = statement.span
        if not kernel.stochastic:
            if isinstance(body, ast.Name) and body.id == "masked":
                if destroy.family not in (Family.MASK, Family.MASH_LAST):
                    raise self.err(
                        DtgTypeError, "'masked' needs a Mask or MashLast destruction", body.span
                    )
                return _singleton_start(body, span, "masked", r"x_{T} = \ast")
            space = checker.infer(body)
            value = checker.constant(body)
            if level_space.kind != "real" or space not in (SCALAR, level_space) or value is None:
                raise self.err(
                    DtgTypeError,
                    "a deterministic generation start must be a constant point: = 0 (real) or = masked (tokens)",
                    body.span,
                )
            return _singleton_start(body, span, float(value), rf"x_{{T}} = {value:g}")
        call = self._call(kernel, ("Normal", "Categorical"), "a random generation start (~)")
        if call.func == "Normal":
            args = self._args(call, ("mean", "std"), 2)
            if level_space.kind != "real":
                raise self.err(
                    DtgTypeError, f"Normal needs a real message, but it is {level_space}", call.span
                )
            lowered = {}
            for name in ("mean", "std"):
                lowered[name] = checker.lower(args[name])
                space = lowered[name].space
                if space not in (SCALAR, level_space):
                    raise self.err(
                        DtgTypeError,
                        f"the start's {name} is {space}, but {self.message}[{self.steps_name}] is {level_space}",
                        args[name].span,
                    )
            mean = self.builder.build(args["mean"])
            std = self.builder.build(args["std"])
            for name, expr in (("mean", mean), ("std", std)):
                if expr.free_symbols:
                    raise self.err(
                        DtgTypeError, f"the start's {name} must be a constant", args[name].span
                    )
            if not (std.is_number and float(std) > 0):
                raise self.err(
                    DtgRangeError, f"the start's std must be positive, got {std}", args["std"].span
                )
            return Channel(
                Direction.GENERATE,
                Family.NORMAL,
                True,
                None,
                "T",
                expr_to_source(call),
                span,
                {"mean": mean, "std": std},
                {},
                (),
                {},
                rf"x_{{T}} \sim \mathcal{{N}}\left({sp.latex(mean)},\ {sp.latex(std**2)}\right)",
                lowered,
            )
        args = self._args(call, ("logits",), 1)
        if level_space.kind != "token":
            raise self.err(
                DtgTypeError,
                f"Categorical needs a token message, but it is {level_space}",
                call.span,
            )
        logits = checker.lower(args["logits"])
        space = logits.space
        expected = Space("real", (*level_space.shape, level_space.vocab))
        if space not in (SCALAR, expected):
            raise self.err(
                DtgTypeError,
                f"logits are {space}, expected a scalar or {expected}",
                args["logits"].span,
            )
        return Channel(
            Direction.GENERATE,
            Family.CATEGORICAL,
            True,
            None,
            "T",
            expr_to_source(call),
            span,
            {},
            {},
            (),
            {},
            r"x_{T} \sim \operatorname{Categorical}(\ldots)",
            {"logits": logits},
        )

    # ------------------------------------------------------------------ generation step
    def generate(self, destroy: Channel, level_space: Space) -> Channel:
        statement = self.statements.get("generate step")
        if statement is None:
            raise self._missing(
                "generation kernel",
                f"generate {self.message}[t-1] ~ Guess({self.message}[t], net)",
            )
        self._lhs(
            statement,
            T - 1,
            f"a generation kernel defines {self.message}[t-1] from {self.message}[t]: write generate {self.message}[t-1] …",
        )
        checker = ExprChecker(
            self.scope(
                levels={T: level_space},
                level_rule=f"generate {self.message}[t-1] may read {self.message}[t] only",
            ),
            self.source,
        )
        kernel = statement.kernel
        if not kernel.stochastic:
            raise self.err(
                DtgTypeError,
                "a generation kernel must be random (~): deterministic generation cannot guess withheld information",
                kernel.span,
            )
        call = self._call(kernel, ("Guess", "Normal", "Categorical"), "a generation kernel (~)")
        output = self.space if self.steps == 1 else level_space
        if self.steps > 1 and level_space != self.space:
            raise self.err(
                DtgTypeError,
                f"x[0] is {self.space} but later levels are {level_space}: one generation kernel "
                "cannot produce both (use steps T = 1 for a VAE)",
                call.span,
            )
        if call.func == "Guess":
            return self._guess(statement, call, checker, destroy, level_space)
        if call.func == "Normal":
            args = self._args(call, ("mean", "std"), 2)
            if output.kind != "real":
                raise self.err(
                    DtgTypeError, f"Normal needs a real message, but it is {output}", call.span
                )
            lowered = {"mean": checker.lower(args["mean"])}
            mean_space = lowered["mean"].space
            if mean_space not in (SCALAR, output):
                raise self.err(
                    DtgTypeError,
                    f"the mean is {mean_space}, but {self.message}[t-1] is {output}",
                    args["mean"].span,
                )
            lowered["std"] = checker.lower(args["std"])
            std_space = lowered["std"].space
            if std_space not in (SCALAR, output):
                raise self.err(
                    DtgTypeError,
                    f"the std is {std_space}, but {self.message}[t-1] is {output}",
                    args["std"].span,
                )
            builder = self._builder({T: symbolic.X_NEXT})
            mean, std = builder.build(args["mean"]), builder.build(args["std"])
            return Channel(
                Direction.GENERATE,
                Family.NORMAL,
                True,
                "t",
                "t-1",
                expr_to_source(call),
                statement.span,
                {"mean": mean, "std": std},
                {},
                tuple(dict.fromkeys(checker.nets_called)),
                {},
                rf"x_{{t-1}} \sim \mathcal{{N}}\left({symbolic.latex(mean)},\ \left({symbolic.latex(std)}\right)^{{2}}\right)",
                lowered,
            )
        args = self._args(call, ("logits",), 1)
        if output.kind != "token":
            raise self.err(
                DtgTypeError, f"Categorical needs a token message, but it is {output}", call.span
            )
        expected = Space("real", (*output.shape, output.vocab))
        logits = checker.lower(args["logits"])
        space = logits.space
        if space not in (SCALAR, expected):
            raise self.err(
                DtgTypeError, f"logits are {space}, expected {expected}", args["logits"].span
            )
        return Channel(
            Direction.GENERATE,
            Family.CATEGORICAL,
            True,
            "t",
            "t-1",
            expr_to_source(call),
            statement.span,
            {},
            {},
            tuple(dict.fromkeys(checker.nets_called)),
            {},
            r"x_{t-1} \sim \operatorname{Categorical}(\ldots)",
            {"logits": logits},
        )

    def _guess(
        self, statement, call, checker: ExprChecker, destroy: Channel, level_space: Space
    ) -> Channel:
        args = self._args(call, ("x", "net", "predict", "variance", "clip"), 2)
        if not self._is_level(args["x"], T):
            raise self.err(
                DtgTypeError,
                f"the first argument of Guess must be {self.message}[t]",
                args["x"].span,
            )
        lowered = {"x": checker.lower(args["x"])}
        net_node = args["net"]
        if not isinstance(net_node, ast.Name) or net_node.id not in self.scope().nets:
            raise self.err(
                DtgTypeError,
                "the second argument of Guess must name a declared net",
                net_node.span,
                "write Guess(x[t], eps) with 'net eps : (…) -> …' declared in the model",
            )
        net = self.scope().nets[net_node.id]
        if destroy.family not in (
            Family.LINEAR_GAUSSIAN,
            Family.MASK,
            Family.SHUFFLE,
            Family.MASH_LAST,
        ):
            reason = "it contains nets" if destroy.learned else "it is not linear-Gaussian"
            raise self.err(
                DtgTypeError,
                f"Guess needs a destruction with a known posterior (linear-Gaussian, Mask, Shuffle or "
                f"MashLast), and this destruction is a general Normal ({reason})",
                call.func_span,
                "write the generation kernel out instead, e.g. Normal(mean(x[t]), std(x[t]))",
            )
        options: dict[str, Any] = {"net": net.name}
        gaussian = destroy.family is Family.LINEAR_GAUSSIAN
        for name, choices, default in (
            ("predict", PREDICT, Predict.EPSILON),
            ("variance", VARIANCE, Variance.POSTERIOR),
        ):
            node = args.get(name)
            if node is None:
                options[name] = default if gaussian else None
                continue
            if not gaussian:
                raise self.err(
                    DtgTypeError, f"'{name}' applies to Gaussian destruction only", node.span
                )
            if not isinstance(node, ast.Name) or node.id not in choices:
                got = node.id if isinstance(node, ast.Name) else "an expression"
                hint = did_you_mean(got, choices) if isinstance(node, ast.Name) else None
                raise self.err(
                    DtgTypeError,
                    f"Guess option {name} must be one of {', '.join(choices)}, got {got}",
                    node.span,
                    *([hint] if hint else []),
                )
            options[name] = Predict(node.id) if name == "predict" else Variance(node.id)
        clip_node = args.get("clip")
        options["clip"] = None
        if clip_node is not None:
            value = ExprChecker(self.scope(), self.source).constant(clip_node)
            if not gaussian or value is None or value <= 0:
                raise self.err(
                    DtgTypeError,
                    "clip must be a positive number (Gaussian Guess only): x̂[0] is clamped to [-clip, clip]",
                    clip_node.span,
                )
            options["clip"] = float(value)
        # The net sees x[t] (and the time) and predicts ε / x[0] / v, or logits over x[0].
        time = Space("time")
        inputs = [s for s in net.inputs if s != time]
        if inputs != [level_space] or len(net.inputs) - len(inputs) > 1:
            raise self.err(
                DtgTypeError,
                f"Guess's net '{net.name}' takes ({', '.join(map(str, net.inputs))}), but it must take "
                f"the message {level_space} and optionally time",
                net_node.span,
                f"declare: net {net.name} : ({level_space}, time) -> …",
            )
        if gaussian:
            expected = level_space
        else:
            expected = Space("real", (*level_space.shape, level_space.vocab))
        if net.output != expected:
            what = (
                "ε, x[0] or v of the message's shape"
                if gaussian
                else "logits over the vocabulary per position"
            )
            raise self.err(
                DtgTypeError,
                f"Guess's net '{net.name}' returns {net.output}, but it must return {expected} ({what})",
                net_node.span,
            )
        return Channel(
            Direction.GENERATE,
            Family.GUESS,
            True,
            "t",
            "t-1",
            expr_to_source(call),
            statement.span,
            {},
            {},
            (net.name,),
            options,
            rf"x_{{t-1}} \sim q\left(x_{{t-1}} \mid x_{{t}},\ \hat x_{{0}} = \operatorname{{{net.name}}}(x_{{t}}, t)\right)",
            lowered,
        )

    # ------------------------------------------------------------------ the two ends
    def check_ends(self, destroy: Channel, start: Channel) -> None:
        """The destruction must reach what generation starts from; std 0 only into a singleton."""
        final = self.steps
        singleton = start.family is Family.SINGLETON
        if destroy.family is Family.LINEAR_GAUSSIAN:
            s = destroy.tables["s"]
            for t in range(1, final + 1):
                if s[t] < 0 or (s[t] == 0 and not (t == final and singleton)):
                    raise self.err(
                        DtgRangeError,
                        f"std = {s[t]:.6g} at level t = {t}: a standard deviation must be positive"
                        + (
                            " (std = 0 is allowed only at t = T, into a singleton start)"
                            if s[t] == 0
                            else ""
                        ),
                        destroy.args["std"].span or destroy.span,
                    )
        if singleton and start.params.get("value") != "masked":
            if destroy.family is Family.LINEAR_GAUSSIAN:
                a, s = destroy.tables["a"][final], destroy.tables["s"][final]
                value = start.params["value"]
                if s != 0 or (a != 0 and value != 0):
                    raise self.err(
                        DtgRangeError,
                        f"generation starts at the point {value:g}, but destruction does not end there "
                        f"(at t = T the mean coefficient is {a:.6g} and the std {s:.6g})",
                        start.span,
                        "the last destroy step must be deterministic into the point: std(T) = 0",
                    )
            elif destroy.family is Family.NORMAL:
                std_at_end = sp.simplify(destroy.params["std"].subs(T, final))
                if std_at_end != 0:
                    raise self.err(
                        DtgRangeError,
                        "generation starts at a point, but the destroy std at t = T is not 0 "
                        f"(it is {std_at_end})",
                        start.span,
                    )
        if start.params.get("value") == "masked":
            if destroy.family is Family.MASK and destroy.tables["keep"][final] != 0:
                raise self.err(
                    DtgRangeError,
                    f"generation starts all-masked, but destruction keeps each position at t = T with "
                    f"probability {destroy.tables['keep'][final]:.6g}",
                    start.span,
                    "make keep = 0 at t = T, e.g. keep = alpha(t)/alpha(t-1) with alpha(T) = 0",
                )

    def marginals(self, destroy: Channel) -> dict[str, np.ndarray]:
        """Closed-form marginal and posterior tables of the destruction, where they exist."""
        if destroy.family is Family.LINEAR_GAUSSIAN:
            return symbolic.gaussian_tables(destroy.tables["a"], destroy.tables["s"])
        if destroy.family in (Family.MASK, Family.SHUFFLE):
            return symbolic.discrete_alpha(destroy.tables["keep"])
        return {}

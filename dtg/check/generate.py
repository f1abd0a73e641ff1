"""``generate x[T] …`` (the start: ``= 0``, ``= masked``, ``~ Normal(c, c)``,
``~ Categorical(logits = c)``) and ``generate x[t-1] ~ …`` (``Guess``, ``Normal``,
``Categorical``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import sympy as sp

from ..errors import DtgRangeError, DtgTypeError, Span, did_you_mean
from ..ir import Channel, Direction, Family, Space
from ..ir.options import Predict, Variance
from ..syntax import ast
from ..syntax.printer import brief, expr_to_source
from . import symbolic
from .exprs import ExprChecker
from .kernel_base import KernelBase, T
from .orders import order_net
from .scope import SCALAR

__all__ = ["GenerateKernels", "PREDICT", "VARIANCE"]

PREDICT = tuple(str(p) for p in Predict)
VARIANCE = tuple(str(v) for v in Variance)


def _singleton_start(body: ast.Expr, span: Span, value: float | str, latex: str) -> Channel:
    """The channel of a deterministic start ``generate x[T] = value`` (a point: ``0``, ``masked``)."""
    return Channel(
        Direction.GENERATE, Family.SINGLETON, False, None, "T", expr_to_source(body), span,
        {"value": value}, {}, (), {}, latex,
    )  # fmt: skip


class GenerateKernels(KernelBase):
    """The generation start's and the generation kernel's checks."""

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
                if destroy.family not in (Family.MASK, Family.MASH_LAST, Family.MASH_RANDOM):
                    raise self.err(
                        DtgTypeError,
                        "'masked' needs a Mask, MashLast or MashRandom destruction",
                        body.span,
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
            mean = self.sympy(lowered["mean"])
            std = self.sympy(lowered["std"])
            for name, expr in (("mean", mean), ("std", std)):
                if expr.free_symbols:
                    raise self.err(
                        DtgTypeError, f"the start's {name} must be a constant", args[name].span
                    )
                # nan for a complex or undefined value (sqrt(-1), 1/0).
                value = symbolic.table(expr, 0)[0]
                if not np.isfinite(value) or (name == "std" and value <= 0):
                    shown = brief(expr_to_source(args[name]))
                    rule = "a positive number" if name == "std" else "a finite number"
                    got = f"it is {value:.6g}" if np.isfinite(value) else "it has no real value"
                    raise self.err(
                        DtgRangeError,
                        f"the start's {name} must be {rule}, but {shown} is not ({got})",
                        args[name].span,
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
    def generate(
        self, destroy: Channel, level_space: Space, output: Space | None = None
    ) -> Channel:
        """``generate x[t-1] ~ …`` reading ``x[t]`` of ``level_space``.

        :param output: the space of ``x[t-1]`` when the levels it covers say so (per-level
            kernels beside the template); by default the data's for ``T = 1``, else the levels'.
        """
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
        given = output is not None
        if output is None:
            output = self.space if self.steps == 1 else level_space
        if not given and self.steps > 1 and level_space != self.space:
            raise self.err(
                DtgTypeError,
                f"x[0] is {self.space} but later levels are {level_space}: one generation kernel "
                "cannot produce both",
                call.span,
                f"give x[0] a kernel of its own (generate {self.message}[0] ~ Normal(dec("
                f"{self.message}[1]), 0.1)) beside this template, or use steps T = 1 for a VAE",
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
            levels = {"next": symbolic.X_NEXT}
            mean, std = self.sympy(lowered["mean"], levels), self.sympy(lowered["std"], levels)
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
        args = self._args(call, ("x", "net", "predict", "variance", "clip", "order"), 2)
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
            Family.MASH_RANDOM,
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
        nets = (net.name,)
        if "order" in args:  # a learned reveal order (check/orders.py): MashRandom only
            if destroy.family is not Family.MASH_RANDOM:
                raise self.err(
                    DtgTypeError, "order applies to MashRandom destruction only", args["order"].span
                )
            options["order"] = order_net(self, args["order"], level_space, "Guess")
            nets = (*nets, options["order"])
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
            nets,
            options,
            rf"x_{{t-1}} \sim q\left(x_{{t-1}} \mid x_{{t}},\ \hat x_{{0}} = \operatorname{{{net.name}}}(x_{{t}}, t)\right)",
            lowered,
        )

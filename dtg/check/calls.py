"""Lowering of calls: schedules, built-in functions, nets, targets, plug-in rewards, classify."""

from __future__ import annotations

from ..errors import DtgTypeError, did_you_mean
from ..ir import NetSpec, Space
from ..ir import expr as ir
from ..names import GRAD, HYPERSCHEDULES
from ..syntax import ast
from .scope import BINARY_FUNCTIONS, CHANNELS, REDUCTIONS, SCALAR
from .symbolic import MATH_FUNCTIONS

__all__ = ["CallLowering"]


class CallLowering:
    """The call rules of :class:`~dtg.check.exprs.ExprChecker` (a mixin: it needs ``lower``,
    ``scalar``, ``error``, ``unknown``, ``constant`` and ``scope``)."""

    def _call(self, node: ast.Call) -> ir.Expr:
        func, scope = node.func, self.scope
        if func in scope.schedules:
            params = scope.schedules[func]
            self._arity(node, len(params), f"the schedule '{func}'")
            args = tuple(
                self.scalar(arg, f"an argument of the schedule '{func}'") for arg in node.args
            )
            return ir.ScheduleCall(func, args, span=node.span)
        if func in MATH_FUNCTIONS:
            self._arity(node, 1, f"'{func}'")
            arg = self.lower(node.args[0])
            self._require_real(arg.space, node.args[0], f"{func}()")
            return ir.Call(ir.Builtin(func), (arg,), space=arg.space, span=node.span)
        if func in BINARY_FUNCTIONS:
            self._arity(node, 2, f"'{func}'")
            args = tuple(self.lower(arg) for arg in node.args)
            spaces = [arg.space for arg in args]
            for space, arg in zip(spaces, node.args, strict=True):
                self._require_real(space, arg, f"{func}()")
            space = None
            if spaces[0] == SCALAR or spaces[0] == spaces[1]:
                space = spaces[1]
            elif spaces[1] == SCALAR:
                space = spaces[0]
            if space is not None:
                return ir.Call(ir.Builtin(func), args, space=space, span=node.span)
            raise self.error(
                DtgTypeError,
                f"{func}() of {spaces[0]} and {spaces[1]}: the shapes do not match",
                node.span,
            )
        if func in REDUCTIONS:
            self._arity(node, 1, f"'{func}'")
            arg = self.lower(node.args[0])
            self._require_real(arg.space, node.args[0], f"{func}()")
            return ir.Call(ir.Builtin(func), (arg,), span=node.span)
        if func in HYPERSCHEDULES:
            return self._hyperschedule(node)
        if func in scope.nets:
            return self._net_call(node, scope.nets[func])
        if func == "classify":
            return self._classify(node)
        if func == GRAD:
            return self._grad(node)
        if func in scope.targets:
            self._arity(node, 1, f"the target '{func}'")
            arg = self.lower(node.args[0])
            space = arg.space
            dim = scope.targets[func]
            if space != Space("real", (dim,)):
                raise self.error(
                    DtgTypeError,
                    f"the target '{func}' is a density on real[{dim}], but its argument is {space}",
                    node.args[0].span,
                )
            return ir.RewardCall(ir.RewardKind.TARGET, func, arg, span=node.span)
        if func in scope.plugins:
            if not scope.in_reward:
                raise self.error(
                    DtgTypeError,
                    f"'{func}' is a Python reward (a plug-in): it can be called in a reward "
                    "statement only",
                    node.func_span,
                )
            self._arity(node, 1, f"the plug-in reward '{func}'")
            arg = self.lower(node.args[0])
            return ir.RewardCall(ir.RewardKind.PLUGIN, func, arg, span=node.span)
        if func in CHANNELS:
            raise self.error(
                DtgTypeError,
                f"'{func}' is a channel: it can only follow '~' in a destroy or generate statement",
                node.func_span,
            )
        error = self.unknown(func, node.func_span, "function")
        if scope.in_reward and not error.hints and not func.startswith("__"):
            error.hints.append(
                "a reward written in Python is registered by the user: "
                f"dtg.register_reward('{func}', fn) or --plugin FILE.py"
            )
        raise error

    def _classify(self, node: ast.Call) -> ir.Expr:
        """``classify(x[0], classes = [0, 2, 4])``: log-probability of the classes (a scalar)."""
        if len(node.args) != 1 or [k.name for k in node.kwargs] != ["classes"]:
            raise self.error(
                DtgTypeError,
                "classify takes an image and the classes: classify(x[0], classes = [0, 2, 4, 6, 8])",
                node.span,
            )
        arg = self.lower(node.args[0])
        space = arg.space
        if space.shape != (64,) and space.shape != (8, 8):
            raise self.error(
                DtgTypeError,
                f"classify's built-in digits classifier reads 8x8 images (64 pixels), got {space}",
                node.args[0].span,
            )
        classes = node.kwargs[0].value
        items = classes.items if isinstance(classes, ast.Vector) else ()
        values = [self.constant(i) for i in items]
        if not values or any(
            v is None or not float(v).is_integer() or not 0 <= v <= 9 for v in values
        ):
            raise self.error(
                DtgTypeError,
                "classes must be a list of digits 0..9, e.g. [0, 2, 4, 6, 8]",
                classes.span,
            )
        digits = tuple(int(v) for v in values if v is not None)
        return ir.RewardCall(ir.RewardKind.CLASSIFY, "classify", arg, digits, span=node.span)

    def _grad(self, node: ast.Call) -> ir.Expr:
        """``grad(logr, x[t], clip = c)``: ∇ log r at a level the expression may read."""
        scope = self.scope
        usage = "grad(logr, x[t]) takes the reward's name and a level (and optionally clip = c)"
        if scope.in_reward:
            raise self.error(
                DtgTypeError, "grad cannot be used inside the reward itself", node.func_span
            )
        if scope.schedule_params or not scope.allow_nets:
            raise self.error(
                DtgTypeError,
                "grad cannot be used here: schedules, data sources and the generation start read "
                "no level of the message",
                node.func_span,
                hints=["use it in a kernel: generate x[t-1] ~ Normal(… grad(logr, x[t]) …)"],
            )
        if scope.reward is None:
            raise self.error(
                DtgTypeError,
                "grad(…) is the gradient of the model's reward, and this model has no reward",
                node.func_span,
                hints=[f"declare one: reward logr({scope.message}) = …"],
            )
        name, space = scope.reward
        if len(node.args) != 2 or any(k.name != "clip" for k in node.kwargs):
            extra = next((k for k in node.kwargs if k.name != "clip"), None)
            raise self.error(DtgTypeError, usage, extra.span if extra else node.span)
        first, second = node.args
        if not isinstance(first, ast.Name) or first.id != name:
            got = first.id if isinstance(first, ast.Name) else "an expression"
            hint = did_you_mean(got, [name]) if isinstance(first, ast.Name) else None
            raise self.error(
                DtgTypeError,
                f"the first argument of grad must name the model's reward '{name}', not {got}",
                first.span,
                hints=[hint or f"write grad({name}, {scope.message}[t])"],
            )
        level = self.lower(second)
        if not isinstance(level, ir.LevelRef):
            raise self.error(
                DtgTypeError,
                f"grad is taken at a level of the message, e.g. {scope.message}[t]",
                second.span,
            )
        if level.space.kind != "real":
            raise self.error(
                DtgTypeError,
                f"grad needs a real space (the gradient of log r), not {level.space}",
                second.span,
            )
        if level.space != space:
            raise self.error(
                DtgTypeError,
                f"the reward '{name}' reads {space}, but {scope.message}"
                f"[{level.level.text()}] is {level.space}",
                second.span,
            )
        clip = ir.GRAD_CLIP
        if node.kwargs:
            value = self.constant(node.kwargs[0].value)
            if value is None or not value > 0 or value == float("inf"):
                raise self.error(
                    DtgTypeError,
                    "clip must be a positive number: each entry of the gradient is clipped to "
                    "[-clip, clip]",
                    node.kwargs[0].value.span,
                )
            clip = float(value)
        return ir.RewardGrad(name, level, clip, space=level.space, span=node.span)

    def _arity(self, node: ast.Call, count: int, what: str) -> None:
        if node.kwargs:
            raise self.error(
                DtgTypeError, f"{what} takes no keyword arguments", node.kwargs[0].span
            )
        if len(node.args) != count:
            raise self.error(
                DtgTypeError,
                f"{what} takes {count} argument{'s' if count != 1 else ''}, got {len(node.args)}",
                node.span,
            )

    def _net_call(self, node: ast.Call, net: NetSpec) -> ir.Expr:
        if not self.scope.allow_nets:
            raise self.error(
                DtgTypeError,
                f"the net '{net.name}' cannot be called here: schedules and rewards are fixed functions",
                node.func_span,
            )
        signature = "(" + ", ".join(map(str, net.inputs)) + f") -> {net.output}"
        self._arity(node, len(net.inputs), f"the net '{net.name}' {signature}")
        args: list[ir.Expr] = []
        for position, (arg, expected) in enumerate(zip(node.args, net.inputs, strict=True), 1):
            if expected.kind == "time":
                args.append(self.scalar(arg, f"the time input of '{net.name}'"))
                continue
            lowered = self.lower(arg)
            args.append(lowered)
            got = lowered.space
            if got != expected:
                raise self.error(
                    DtgTypeError,
                    f"argument {position} of the net '{net.name}' is {got}, but its signature "
                    f"{signature} expects {expected}",
                    arg.span,
                )
        self.nets_called.append(net.name)
        return ir.NetCall(net.name, tuple(args), space=net.output, span=node.span)

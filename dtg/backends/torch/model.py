"""``Program.compile`` → :class:`CompiledModel`: nets, channels, objective, on one device.

A compiled model is an ``nn.Module`` holding the built nets, the executable channels (schedule
tables as float32 buffers) and the objective (with its own parameters, e.g. log Z). Everything
follows ``device``: ``.to(device)`` moves it all, and no tensor is created elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ...channels.base import level_tensor
from ...channels.discrete import CategoricalKernel
from ...channels.factory import build_discrete
from ...channels.gaussian import LinearGaussian, NormalKernel, NormalStart, PointStart
from ...channels.guess import GaussianGuess
from ...errors import DtgRuntimeError, DtgTypeError
from ...ir import Channel, Family, ModelIR, ObjectiveKind
from ...ir import expr as ir_expr
from ...ir.model import NetSpec
from ...marginals import gaussian_tables
from ...nets import NetConfigError, build_net
from ...objectives import build_objective
from ...objectives.trajectories import sample_trajectories
from ...render import svg
from ...runtime.data_source import load_dataset
from ...runtime.device import resolve_device
from ...runtime.diagnose import first_non_finite
from ..pyro import lower
from .expr import Env, ExprCompiler

__all__ = ["CompiledModel", "compile_program", "resolve_device"]


class CompiledModel(nn.Module):
    """A checked model made executable.

    :param ir: the checked model.
    :param program: the program it came from (for its source and file).
    :param device: where parameters, buffers and samples live.
    """

    def __init__(self, ir: ModelIR, program: Any, device: torch.device) -> None:
        super().__init__()
        self.ir, self.program, self.device = ir, program, device
        self.needs_data = ir.message.role == "data"
        self.register_buffer("dtype_probe", torch.zeros(()), persistent=False)
        self.nets = nn.ModuleDict({name: self._net(spec) for name, spec in ir.nets.items()})
        self.expr = ExprCompiler(ir, dict(self.nets.items()), device)
        self.destroy = self._destroy()
        self.start = self._start()
        self.generate = self._generate()
        if ir.per_level:  # a kernel per level; levels on a template share its module
            self.destroy_levels = self._levels(ir.destroy_levels, self.destroy, self._destroy)
            self.generate_levels = self._levels(ir.generate_levels, self.generate, self._generate)
        self.reward_fn = self._reward()
        self.prior = None
        if ir.parent is not None and ir.objective.kind in (
            ObjectiveKind.RELATIVE_TRAJECTORY_BALANCE,
            ObjectiveKind.POLICY_GRADIENT,
        ):
            # The parent's generation chain, frozen: the prior of fine-tuning.
            self.prior = CompiledModel(ir.parent, program, device).requires_grad_(False)
        self.objective = self._objective()
        self.to(device)

    # ------------------------------------------------------------------ building
    def _net(self, spec: NetSpec) -> nn.Module:
        """Build a declared net; a plug-in net's failure is an error at its declaration."""
        try:
            return build_net(spec.arch, dict(spec.options), spec.inputs, spec.output)
        except NetConfigError as error:
            source = getattr(self.program, "source", None)
            hints = [error.hint] if error.hint else []
            raise DtgTypeError(
                f"net '{spec.name}': {error.message}", spec.span, source, hints=hints
            ) from None

    def _closure(self, node: ir_expr.Expr, level: str):
        closure = self.expr.compile(node)

        owner = [self]  # looked up per call: .to()/.double() replace the buffer

        def evaluate(source: Tensor | None, t: Tensor) -> Tensor:
            levels = {level: source} if source is not None else {}
            return closure(Env(t.shape[0], t.to(owner[0].dtype_probe.dtype), levels))

        return evaluate

    def _unsupported(self, what: str) -> DtgRuntimeError:
        return DtgRuntimeError(
            f"model '{self.ir.name}': {what} cannot be compiled yet", self.ir.span, self.ir_source()
        )

    def ir_source(self) -> str | None:
        return getattr(self.program, "source", None)

    def _levels(
        self,
        channels: tuple[Channel, ...],
        template: nn.Module,
        build: Callable[[Channel], nn.Module],
    ) -> nn.ModuleList:
        """The executable channel of each level (index ``l - 1``), built once per channel."""
        built: dict[int, nn.Module] = {}
        for channel in channels:
            if id(channel) not in built:
                own = channel is not self.ir.destroy and channel is not self.ir.generate
                built[id(channel)] = build(channel) if own else template
        return nn.ModuleList(built[id(channel)] for channel in channels)

    def channel(self, role: str, level: int) -> nn.Module:
        """The executable channel ``role`` (``destroy``, ``generate``, ``start``) at ``level``.

        :param level: the level ``t`` it runs at (1..T; ``T`` for the start).
        :returns: the level's own channel (per-level kernels), else the template's.
        """
        if role != "start" and self.ir.per_level:
            return getattr(self, f"{role}_levels")[level - 1]
        return getattr(self, role)

    def _level_shape(self, channel: Channel) -> tuple[int, ...]:
        """The shape of the level a channel defines (a template's: the first level it covers)."""
        target = channel.target
        if channel.single_level:
            return self.ir.message.space_at(int(target)).shape
        if self.ir.per_level:
            levels = self.ir.destroy_levels if target == "t" else self.ir.generate_levels
            first = next(k for k, c in enumerate(levels, start=1) if c is channel)
            return self.ir.message.space_at(first if target == "t" else first - 1).shape
        if target == "t-1" and self.ir.steps == 1:
            return self.ir.message.space.shape
        return self.ir.message.level_space.shape

    @staticmethod
    def _source_key(channel: Channel) -> str:
        """The level key (:attr:`dtg.ir.expr.Level.key`) of the level a channel reads."""
        template = {"t-1": "prev", "t": "next", None: "next"}
        if channel.source in template:
            return template[channel.source]
        return ir_expr.Level(ir_expr.LevelAnchor.ABSOLUTE, int(channel.source)).key

    def _normal(self, channel: Channel) -> NormalKernel:
        """A general Normal channel; its closures read the level the channel reads."""
        key, args = self._source_key(channel), channel.args
        return NormalKernel(
            self._closure(args["mean"], key),
            self._closure(args["std"], key),
            self._level_shape(channel),
        )

    def _destroy(self, channel: Channel | None = None) -> nn.Module:
        channel = channel or self.ir.destroy
        if channel.family is Family.LINEAR_GAUSSIAN:
            # A template beside per-level kernels: its own tables (the chain has no marginals).
            tables = self.ir.marginals or gaussian_tables(channel.tables["a"], channel.tables["s"])
            return LinearGaussian({**channel.tables, **tables})
        if channel.family is Family.NORMAL:
            return self._normal(channel)
        return self._discrete("destroy")

    def _start(self) -> nn.Module:
        channel, shape = self.ir.start, self.ir.message.level_space.shape
        if channel.family is Family.NORMAL:
            return NormalStart(float(channel.params["mean"]), float(channel.params["std"]), shape)
        if channel.family is Family.SINGLETON and channel.params["value"] != "masked":
            return PointStart(channel.params["value"], shape)
        return self._discrete("start")

    def _generate(self, channel: Channel | None = None) -> nn.Module:
        channel = channel or self.ir.generate
        if channel.family is Family.CATEGORICAL and channel.single_level:
            space = self.ir.message.space_at(int(channel.target))
            logits = self._closure(channel.args["logits"], self._source_key(channel))
            return CategoricalKernel(logits, tuple(space.shape), int(space.vocab or 0))
        if channel.family is Family.GUESS and isinstance(self.destroy, LinearGaussian):
            net = self.nets[channel.options["net"]]
            timed = any(s.kind == "time" for s in self.ir.nets[channel.options["net"]].inputs)
            steps = float(self.ir.steps)

            def predict(xt: Tensor, t: Tensor) -> Tensor:
                return net(xt, t.float() / steps) if timed else net(xt)

            return GaussianGuess(
                self.destroy,
                predict,
                channel.options["predict"],
                channel.options["variance"],
                channel.options.get("clip"),
            )
        if channel.family is Family.NORMAL:
            return self._normal(channel)
        return self._discrete("generate")

    def _reward(self):
        """``log r(x[0])`` as a closure ``[B, *shape] -> [B]`` (``None`` without a reward)."""
        reward = self.ir.reward
        if reward is None:
            return None
        closure = self.expr.compile(reward.body)  # its parameter is x[0], the level "zero"
        device = self.device

        def log_reward(x0: Tensor) -> Tensor:
            t = torch.zeros(
                x0.shape[0], device=device, dtype=x0.dtype if x0.is_floating_point() else None
            )
            value = closure(Env(x0.shape[0], t, {"zero": x0}))
            return value.expand(x0.shape[0]) if value.dim() == 0 else value

        return log_reward

    def _discrete(self, role: str) -> nn.Module:
        return build_discrete(self, role)

    def _objective(self) -> nn.Module:
        return build_objective(self)

    # ------------------------------------------------------------------ the runtime interface
    def dataset(self, seed: int = 0):
        """The declared data source, loaded (``None`` for samplers)."""
        return load_dataset(self, seed)

    def loss(self, batch: Tensor | int) -> Tensor:
        """The declared objective: a scalar, differentiable.

        :param batch: data ``[B, *shape]`` on the model's device, or for reward-based
            objectives the number of trajectories.
        """
        return self.objective(batch)

    def forward(self, batch: Tensor | int) -> Tensor:
        """The loss (so that DistributedDataParallel can wrap the model)."""
        return self.objective(batch)

    def set_step(self, step: int) -> None:
        """Tell the objective the training step (the ``elbo`` KL warm-up reads it).

        :param step: steps already taken (0 before the first); a no-op for other objectives.
        """
        method = getattr(self.objective, "set_step", None)
        if method is not None:
            method(step)

    def per_level_kl(self, data: Tensor, batch: int = 500) -> dict[str, float]:
        """Each latent level's mean KL term on ``data`` (``kl_level_1`` …), for objectives that
        split the ELBO by level (``elbo``); ``{}`` for the others.

        :param data: examples ``[N, *shape]`` on the model's device.
        :param batch: examples scored at a time.
        :returns: nats per example, by level.
        """
        method = getattr(self.objective, "per_level_kl", None)
        return method(data, batch) if method is not None else {}

    def init_from_parent(self, state: dict[str, Tensor]) -> None:
        """Load a trained parent's weights into both the posterior and the frozen prior.

        :param state: the parent model's ``state_dict`` (from its checkpoint).
        :raises DtgRuntimeError: listing every missing, unexpected or mis-shaped net weight.
        """
        nets = {k: v for k, v in state.items() if k.startswith("nets.")}
        own = {k: v for k, v in self.state_dict().items() if k.startswith("nets.")}
        problems = [f"missing in the checkpoint: {k}" for k in own if k not in nets]
        problems += [f"not in this model: {k}" for k in nets if k not in own]
        problems += [
            f"shape of {k}: checkpoint {tuple(nets[k].shape)}, model {tuple(v.shape)}"
            for k, v in own.items()
            if k in nets and tuple(nets[k].shape) != tuple(v.shape)
        ]
        if problems:
            raise DtgRuntimeError(
                f"the checkpoint's nets do not match model '{self.ir.name}'",
                hints=problems[:20] + (["…"] if len(problems) > 20 else []),
            )
        self.load_state_dict(nets, strict=False)
        if self.prior is not None:
            self.prior.load_state_dict(nets, strict=False)

    def param_groups(self, lr: float) -> list[dict]:
        """Optimizer parameter groups; objectives with their own rates (log Z) add groups."""
        groups = getattr(self.objective, "param_groups", None)
        if groups is not None:
            return groups(lr)
        return [{"params": [p for p in self.parameters() if p.requires_grad], "lr": lr}]

    def metrics(self, batch: Any) -> dict[str, float]:
        extra = getattr(self.objective, "metrics", None)
        return extra() if extra is not None else {}

    def diagnose_nan(self, batch: Tensor | int) -> str | None:
        """Where a NaN/inf first appears when the chains are replayed on ``batch`` (a parameter,
        the data, a channel at a level, the start or the reward); ``None`` if nowhere."""
        return first_non_finite(self, batch)

    @torch.no_grad()
    def sample(self, n: int) -> Tensor:
        """Ancestral sampling of the generation chain: ``[n, *shape]`` in the data space.

        A left-to-right model whose net is causal without time (in evaluation mode) generates
        with a key/value cache (:mod:`dtg.nets.decode`): the same draws, one pass in all.
        """
        fast = getattr(self.generate, "sample_sequence", None)
        if fast is not None and not self.ir.generate_levels:
            x = fast(n, self.device)
            if x is not None:
                return x.reshape(n, *self.ir.message.space.shape)
        x = self.start.sample(None, level_tensor(self.ir.steps, n, self.device))
        for level in range(self.ir.steps, 0, -1):
            x = self.channel("generate", level).sample(x, level_tensor(level, n, self.device))
        return x

    def nelbo(self, batch: Tensor, levels: int = 0) -> Tensor:
        """The negative ELBO of each example of ``batch``: ``[B]`` nats.

        :param batch: examples ``[B, *shape]``.
        :param levels: levels scored per example (0 = every level; ``K`` = an unbiased estimate
            from ``K`` levels drawn per example, :mod:`dtg.objectives.level_sum`).
        """
        method = getattr(self.objective, "nelbo", None)
        if method is None:
            raise DtgRuntimeError(f"objective {self.ir.objective.kind.value} has no ELBO to report")
        with torch.no_grad():
            return method(batch, levels=levels)

    def trajectory(self, n: int, explore: float = 0.0):
        """Generation trajectories with their log-probabilities (see :mod:`dtg.objectives.balance`)."""
        return sample_trajectories(self, n, explore=explore)

    def pyro(self):
        """The Pyro lowering: ``(model, guide)`` sharing this model's nets."""
        return lower(self)

    def _repr_svg_(self) -> str:
        return svg(self.ir)


def compile_program(program: Any, model: str | None = None, device: str | torch.device = "auto"):
    """Compile one model of a program (default: its last) on ``device``."""
    ir = program.model(model)
    return CompiledModel(ir, program, resolve_device(device))


def objective_kind(model: CompiledModel) -> ObjectiveKind:
    return model.ir.objective.kind


def base_dir(model: CompiledModel) -> Path:
    return Path(getattr(model.program, "file", ".")).resolve().parent

"""The trajectory-balance family for samplers of unnormalised densities.

With δ = log p(x[T]) + Σ log p(x[t-1] | x[t]) − log r(x[0]) − Σ log q(x[t] | x[t-1]) per
trajectory:

* ``trajectory_balance``: (log Z + δ)², log Z learned with its own rate ``lr_logZ``;
* ``vargrad``: the batch variance of δ (no log Z);
* ``subtb(lambda)``: sub-trajectory balance over every pair of levels i < j with a learned log-flow
  log F(x[t]) per level, weighted by λ^(j−i) (normalised); log F(x[0]) = log r(x[0]) and
  log F(x[T]) = log Z + log p(x[T]);
* ``detailed_balance``: the same with j = i + 1 only.

Options: ``explore`` (extra generation noise std, decayed linearly to 0 over ``explore_steps``,
never below ``explore_floor``),
``replay = N`` (a buffer of terminal states; half of each batch then runs the destruction chain
backward from buffer samples), ``clip`` (clip each squared residual), for learned destruction
``destroy = joint | tlm | fixed`` with ``lr_destroy`` and ``tau`` (arXiv 2506.01541, 2410.15474),
and ``local_search = true`` with its ``ls_*`` options: odd iterations train on destruction
trajectories from samples found by MALA (:mod:`.local_search`).

References: Malkin et al. 2022 (arXiv 2201.13259); Richter et al. 2020 / Zhang et al. 2023
(VarGrad); Madan et al. 2023 (SubTB, arXiv 2209.12782); Sendera et al. 2024 (arXiv 2402.05098).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import DtgRuntimeError
from ..ir import ObjectiveKind
from ..ir.space import Space, SpaceKind
from ..nets import build_net
from .local_search import LocalSearch
from .trajectories import (
    Trajectories,
    clip_residuals,
    destroy_trajectories,
    sample_trajectories,
)

__all__ = ["start_log_z", "Balance", "tb_loss", "vargrad_loss", "subtb_loss"]


def start_log_z(objective: nn.Module, estimate: Tensor | Callable[[], Tensor]) -> None:
    """Set a learned log Z to the batch mean of ``estimate`` (its per-trajectory optimum) the
    first time the objective runs in training, unless ``log_z_init = zero`` or log Z was set
    to another value than its initial 0.

    log Z is learned at its own small rate (``lr_logZ``, Adam moves it about that much per
    step): from 0 it takes ~1,600 steps to reach Manywell's log Z ≈ 165, and meanwhile the
    residual is dominated by the offset. The ELBO estimate of the first batch is the value that
    minimises the first loss, so the nets learn from the start.

    :param estimate: per-trajectory estimates ``[B]``, or a function computing them (called
        only when log Z is actually set).
    """
    if getattr(objective, "_log_z_seen", False) or not objective.training:
        return  # a Python flag: reading the buffer every step would sync a GPU every step
    objective._log_z_seen = True
    if bool(objective.log_z_started):  # restored from a checkpoint
        return
    untouched = float(objective.log_z.detach()) == 0.0  # a value set by hand is kept
    if objective.options.get("log_z_init", "auto") == "auto" and untouched:
        with torch.no_grad():
            values = estimate() if callable(estimate) else estimate
            objective.log_z.copy_(values.detach().mean().to(objective.log_z.dtype))
    objective.log_z_started.fill_(True)


def tb_loss(log_z: Tensor, traj: Trajectories) -> Tensor:
    """Per-trajectory squared TB residual ``[B]``."""
    delta = traj.log_start + traj.log_pf.sum(1) - traj.log_reward - traj.log_pb.sum(1)
    return (log_z + delta) ** 2


def vargrad_loss(traj: Trajectories) -> Tensor:
    """The batch variance of δ (a scalar); its mean −δ estimates log Z."""
    delta = traj.log_start + traj.log_pf.sum(1) - traj.log_reward - traj.log_pb.sum(1)
    return ((delta - delta.mean()) ** 2).mean()


def subtb_loss(log_flows: Tensor, traj: Trajectories, lam: float, detailed: bool = False) -> Tensor:
    """Sub-trajectory balance per trajectory ``[B]``.

    :param log_flows: ``[B, T + 1]``, column ``t`` is log F(x[t]) (column 0 = log r, column T =
        log Z + log p(x[T])).
    """
    steps = traj.log_pf.shape[1]
    # cum[:, t] = Σ_{k ≤ t} (log q(x[k] | x[k-1]) − log p(x[k-1] | x[k])), cum[:, 0] = 0.
    step_terms = traj.log_pb - traj.log_pf
    cum = torch.cat([torch.zeros_like(step_terms[:, :1]), step_terms.cumsum(1)], dim=1)
    i, j = torch.triu_indices(steps + 1, steps + 1, offset=1, device=log_flows.device)
    if detailed:
        keep = j == i + 1
        i, j = i[keep], j[keep]
    # Balance of the segment between levels i < j: F(x[j]) Π p = F(x[i]) Π q.
    residual = log_flows[:, j] - log_flows[:, i] - (cum[:, j] - cum[:, i])
    # λ^(j−i) / Σ λ^(j−i), normalised in log space: λ^T of a large λ or T overflows (a small one
    # underflows to 0/0), the normalised weights do not.
    lengths = (j - i).to(torch.float64)
    log_weights = torch.zeros_like(lengths) if detailed else lengths * math.log(lam)
    weights = torch.softmax(log_weights, 0).to(log_flows.dtype)
    return (residual**2 * weights).sum(1)


class Balance(nn.Module):
    """A balance objective bound to a compiled sampler.

    :param model: the compiled model (provides start, generate, destroy, reward_fn).
    :param kind: which member of the family.
    :param options: the objective's options.
    """

    def __init__(self, model: Any, kind: ObjectiveKind, options: dict) -> None:
        super().__init__()
        self._model = [model]  # not a submodule: the model owns this objective
        self.kind, self.options = kind, dict(options)
        self.log_z = nn.Parameter(torch.zeros(()))
        # log Z starts at the first batch's ELBO estimate (see _start_log_z); kept in checkpoints.
        self.register_buffer("log_z_started", torch.zeros((), dtype=torch.bool))
        self.register_buffer("step", torch.zeros((), dtype=torch.long))
        self.destroy_mode = options.get("destroy", "joint")
        self.destroy_nets = sorted(set(model.ir.destroy.nets) - set(model.ir.generate.nets))
        self.flows = None
        if kind in (ObjectiveKind.SUBTB, ObjectiveKind.DETAILED_BALANCE):
            space = model.ir.message.level_space
            self.flows = build_net(
                "mlp",
                {"hidden": [64, 64]},
                (space, Space.time()),
                Space.scalar(),
            )
        self.targets = nn.ModuleDict()
        if self.destroy_mode == "tlm" and self.destroy_nets:
            self.targets = nn.ModuleDict(
                {
                    name: copy.deepcopy(model.nets[name]).requires_grad_(False)
                    for name in self.destroy_nets
                }
            )
        if self.destroy_mode == "fixed":
            for name in self.destroy_nets:
                model.nets[name].requires_grad_(False)
        size = int(options.get("replay") or 0)
        shape = model.ir.message.space.shape
        self.register_buffer("replay_x", torch.zeros((size, *shape)))
        self.register_buffer("replay_count", torch.zeros((), dtype=torch.long))
        self.local_search = None
        if options.get("local_search"):
            if model.ir.message.space.kind != SpaceKind.REAL:
                raise DtgRuntimeError(
                    f"local_search needs a real space (MALA follows ∇ log r), not "
                    f"{model.ir.message.space}"
                )
            self.local_search = LocalSearch(tuple(shape), options)
        self._last: dict[str, Tensor] = {}
        self._from_search = False  # the last batch: destruction trajectories from local search
        self._host_step: int | None = None  # see host_step()

    @property
    def model(self) -> Any:
        return self._model[0]

    def param_groups(self, lr: float) -> list[dict]:
        """Generation nets at ``lr``, log Z at ``lr_logZ``, destruction nets at ``lr_destroy``."""
        model = self.model
        destroy = {id(p) for n in self.destroy_nets for p in model.nets[n].parameters()}
        own = {id(self.log_z)} | {id(p) for p in self.targets.parameters()}
        main = [p for p in model.parameters() if p.requires_grad and id(p) not in destroy | own]
        groups = [{"params": main, "lr": lr}]
        if self.kind is not ObjectiveKind.VARGRAD:
            groups.append({"params": [self.log_z], "lr": float(self.options.get("lr_logZ") or 0.1)})
        trainable = [
            p for n in self.destroy_nets for p in model.nets[n].parameters() if p.requires_grad
        ]
        if trainable:
            groups.append({"params": trainable, "lr": float(self.options.get("lr_destroy") or lr)})
        return [g for g in groups if g["params"]]

    def explore_std(self) -> float:
        """The exploration noise std of this step: ``explore`` decayed linearly over
        ``explore_steps``, held at ``explore_floor`` (a floor keeps the behaviour policy visiting
        modes the policy would otherwise drop once exploration ends, as Manywell's lighter wells)."""
        sigma = float(self.options.get("explore") or 0.0)
        span = int(self.options.get("explore_steps") or 1)
        floor = float(self.options.get("explore_floor") or 0.0)
        return max(floor, sigma * (1.0 - self.host_step() / span))

    @contextmanager
    def _target_destruction(self):
        """Evaluate the destruction with the Polyak-averaged copy of its nets (tlm)."""
        nets = self.model.expr.nets
        saved = {name: nets[name] for name in self.targets}
        nets.update(dict(self.targets.items()))
        try:
            yield
        finally:
            nets.update(saved)

    def _polyak(self) -> None:
        tau = float(self.options.get("tau") or 0.99)
        with torch.no_grad():
            for name, target in self.targets.items():
                for p_target, p in zip(
                    target.parameters(), self.model.nets[name].parameters(), strict=True
                ):
                    p_target.mul_(tau).add_(p.detach(), alpha=1 - tau)

    def host_step(self) -> int:
        """The iteration count as a Python int: the ``step`` buffer read once (after a load),
        then counted on the host, so local search's schedule costs no device read per step."""
        if self._host_step is None:
            self._host_step = int(self.step)
        return self._host_step

    def _load_from_state_dict(self, *args: Any, **kwargs: Any) -> None:
        super()._load_from_state_dict(*args, **kwargs)
        self._host_step = None

    def trajectories(self, n: int) -> Trajectories:
        """The batch of ``n`` trajectories this iteration trains on: generated (with the
        ``replay`` and ``explore`` options), or, on local search's off-policy iterations,
        destruction trajectories from the samples it found."""
        search = self.local_search
        self._from_search = False
        if search is not None and search.off_policy(self.host_step()):
            if search.due(self.host_step()):
                search.search(self.model.reward_fn, n)
            starts = search.starts(n)
            if starts is not None:
                self._from_search = True
                return destroy_trajectories(self.model, starts)
        traj, on_policy = self._on_policy(n)
        if search is not None:
            search.remember(traj.states[0][:on_policy], traj.log_reward[:on_policy])
        return traj

    def _on_policy(self, n: int) -> tuple[Trajectories, int]:
        """``n`` generation trajectories (half of them from the replay buffer, with ``replay``),
        and how many of them (the first) were generated."""
        model = self.model
        on_policy = n
        use_replay = self.replay_x.shape[0] > 0 and int(self.replay_count) >= n // 2
        if use_replay:
            on_policy = n - n // 2
        traj = sample_trajectories(model, on_policy, explore=self.explore_std())
        if use_replay:
            filled = min(int(self.replay_count), self.replay_x.shape[0])
            index = torch.randint(filled, (n // 2,), device=self.replay_x.device)
            replayed = self.replay_x[index].to(traj.states[0].dtype)  # tokens: kept as floats
            traj = traj.cat(destroy_trajectories(model, replayed))
        if self.replay_x.shape[0] > 0:
            self._remember(traj.states[0][:on_policy])
        return traj, on_policy

    def _remember(self, x0: Tensor) -> None:
        size = self.replay_x.shape[0]
        start = int(self.replay_count) % size
        index = (torch.arange(x0.shape[0], device=x0.device) + start) % size
        self.replay_x[index] = x0.detach().to(self.replay_x.dtype)
        self.replay_count += x0.shape[0]

    def forward(self, batch: Any) -> Tensor:
        n = int(batch) if not isinstance(batch, Tensor) else batch.shape[0]
        if self.targets:
            self._polyak()
            with self._target_destruction():
                traj = self.trajectories(n)
        else:
            traj = self.trajectories(n)
        self.step += 1
        if self._host_step is not None:
            self._host_step += 1
        if self.kind is ObjectiveKind.VARGRAD:
            loss = vargrad_loss(traj)
            per = None
        elif self.flows is not None:
            per = subtb_loss(
                self._log_flows(traj),
                traj,
                float(self.options.get("lambda") or 0.9),
                detailed=self.kind is ObjectiveKind.DETAILED_BALANCE,
            )
        else:
            start_log_z(self, lambda: self._on_policy_log_weight(traj, n))
            per = tb_loss(self.log_z, traj)
        if per is not None:
            loss = clip_residuals(per, self.options.get("clip")).mean()
        if self.targets:
            loss = loss + self._tlm_loss(traj)
        # the figures stay on the device until a metrics line reads them (no per-step sync)
        if self._from_search:  # no ELBO: the last on-policy batch's figures stay
            if self.kind is not ObjectiveKind.VARGRAD:
                self._last["log_z"] = self.log_z.detach().clone()
            return loss
        with torch.no_grad():
            w = traj.log_weight
            vargrad = self.kind is ObjectiveKind.VARGRAD
            log_z = -(-w).mean() if vargrad else self.log_z.detach().clone()
            self._last = {"log_z": log_z, "log_z_elbo": w.mean()}
        return loss

    def _on_policy_log_weight(self, traj: Trajectories, n: int) -> Tensor:
        """The log-weights ``[B]`` of on-policy trajectories: the batch's own, unless it was drawn
        with exploration noise — then its mean is no ELBO (on Manywell it put log Z ~800 below
        the truth, too far for lr_logZ to climb in a run), and a fresh batch is drawn."""
        if self.explore_std() == 0.0 and not self._from_search:
            return traj.log_weight
        with torch.no_grad(), self._target_destruction():
            return sample_trajectories(self.model, n).log_weight

    def _tlm_loss(self, traj: Trajectories) -> Tensor:
        """Trajectory likelihood maximisation: −Σ log q(x[t] | x[t-1]) on generated trajectories."""
        model = self.model
        total = 0.0
        for t in range(1, model.ir.steps + 1):
            level = torch.full((traj.states[0].shape[0],), t, device=model.device, dtype=torch.long)
            total = total - model.destroy.log_prob(traj.states[t], traj.states[t - 1], level)
        return total.mean()

    def _log_flows(self, traj: Trajectories) -> Tensor:
        steps = len(traj.states) - 1
        n = traj.states[0].shape[0]
        columns = [traj.log_reward]
        for t in range(1, steps):
            time = torch.full((n,), t / steps, device=traj.states[t].device)
            columns.append(self.flows(traj.states[t], time))
        columns.append(self.log_z + traj.log_start)
        return torch.stack(columns, 1)

    def metrics(self) -> dict[str, float]:
        out = {k: float(v) for k, v in self._last.items()}  # read here, at a metrics line
        if self.local_search is not None:
            out.update(self.local_search.metrics())
        return out

"""Local search for the trajectory-balance family, as in Sendera et al. 2024 (arXiv 2402.05098).

Every ``ls_every`` iterations, Metropolis-adjusted Langevin (MALA) chains start from samples of a
rank-prioritised buffer of the sampler's own terminal states; the proposals they accept after a
burn-in go to a second buffer, from which the backward (destruction) trajectories of the
off-policy iterations start. With x' = x + h ∇log r(x) + √(2h) ξ, a proposal is accepted with
probability min(1, r(x') q(x | x') / (r(x) q(x' | x))), q(x' | x) ∝ exp(−‖x' − x − h ∇log r(x)‖²
/ 4h). The step size h starts at ``ls_step_size`` in every round and moves by ±1 % per step: up
when the acceptance rate last measured (over the 5 steps before, refreshed every 5 steps) is above
``ls_target_accept``, down otherwise.

A buffer keeps its last ``ls_buffer`` samples with their log-rewards and draws sample i with
probability ∝ 1 / (k N + rank_i), rank 0 the highest log-reward among the N held, k =
``ls_rank_weight`` (gfn-diffusion's rank-based prioritisation).

Everything runs on the model's device, vectorised over the chains. A round (once per
``ls_every`` iterations) reads three numbers back from the device — how many proposals it kept,
and for the log its acceptance rate and last step size — and nothing per MALA step; the
iterations between rounds read nothing (the iteration count is kept on the host).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ..channels.score import log_reward_and_grad
from ..errors import DtgRuntimeError
from ..sync_check import expected_sync

__all__ = [
    "RATE_WINDOW",
    "adapt_step_size",
    "MalaResult",
    "mala",
    "RankBuffer",
    "LocalSearch",
]

#: Steps over which the acceptance rate that steers the step size is measured (gfn-diffusion).
RATE_WINDOW = 5


def adapt_step_size(step_size: Tensor, rate: Tensor, target: float, factor: float = 0.01) -> Tensor:
    """The next MALA step size: ``step_size · (1 + factor)`` when ``rate > target``, else
    ``step_size · (1 − factor)``.

    :param step_size: the current step size (a 0-d tensor).
    :param rate: the acceptance rate last measured (a 0-d tensor).
    :param target: the acceptance rate aimed at (0.574 is optimal for MALA in high dimension).
    :returns: a tensor like ``step_size``.
    """
    # Python scalars, not new device tensors: no host-to-device copy per MALA step.
    return torch.where(rate > target, step_size * (1.0 + factor), step_size * (1.0 - factor))


@dataclass
class MalaResult:
    """What a MALA run leaves.

    :param x: ``[B, *shape]`` the chains' last states.
    :param log_r: ``[B]`` their log-rewards.
    :param samples: ``[M, *shape]`` the proposals accepted after the burn-in, in step order.
    :param samples_log_r: ``[M]`` their log-rewards.
    :param step_size: the last step size (0-d, float64).
    :param accept_rate: the fraction of all proposals accepted (0-d).
    """

    x: Tensor
    log_r: Tensor
    samples: Tensor
    samples_log_r: Tensor
    step_size: Tensor
    accept_rate: Tensor


def mala(
    log_r_fn: Callable[[Tensor], Tensor],
    x: Tensor,
    steps: int,
    burn_in: int,
    step_size: float,
    target_accept: float = 0.574,
    adapt: bool = True,
) -> MalaResult:
    """Run ``steps`` MALA steps from each row of ``x``, vectorised over the rows.

    Step ``i`` (from 0) uses the step size h_i: h_0 = ``step_size``, h_i = h_{i−1}·(1 ± 0.01)
    (:func:`adapt_step_size`) from the acceptance rate measured at the last step ``j < i`` with
    ``j % 5 == 0`` over the proposals since the previous measurement. The proposals accepted at
    steps ``i > burn_in`` are kept (gfn-diffusion's rule).

    :param log_r_fn: the log-reward, ``[B, *shape] → [B]``.
    :param x: ``[B, *shape]`` starting states.
    :param adapt: move the step size toward ``target_accept`` (else it stays ``step_size``).
    :returns: the chains' end and the samples kept (:class:`MalaResult`).
    """
    x = x.detach()
    n = x.shape[0]
    log_r, grad = log_reward_and_grad(log_r_fn, x)
    h = torch.tensor(float(step_size), dtype=torch.float64, device=x.device)
    rate = torch.zeros((), dtype=torch.float64, device=x.device)
    since = torch.zeros((), dtype=torch.float64, device=x.device)  # accepted since last measured
    total = torch.zeros((), dtype=torch.float64, device=x.device)
    proposals_since = 0
    kept_steps = max(0, steps - burn_in - 1)
    kept = torch.empty((kept_steps, *x.shape), dtype=x.dtype, device=x.device)
    kept_log_r = torch.empty((kept_steps, n), dtype=log_r.dtype, device=x.device)
    kept_mask = torch.zeros((kept_steps, n), dtype=torch.bool, device=x.device)
    for i in range(steps):
        if i > 0 and adapt:
            h = adapt_step_size(h, rate, target_accept)
        hx = h.to(x.dtype)
        drift = x + hx * grad
        proposal = drift + torch.sqrt(2 * hx) * torch.randn_like(x)
        log_r_new, grad_new = log_reward_and_grad(log_r_fn, proposal)
        log_q_fwd = -(proposal - drift).flatten(1).pow(2).sum(1) / (4 * hx)
        log_q_bck = -(x - proposal - hx * grad_new).flatten(1).pow(2).sum(1) / (4 * hx)
        log_accept = log_r_new - log_r + log_q_bck - log_q_fwd
        # A NaN ratio (a non-finite log-reward) compares false: the proposal is rejected.
        accept = torch.rand(n, device=x.device) < torch.exp(log_accept.clamp(max=0.0))
        shape = (n,) + (1,) * (x.dim() - 1)
        x = torch.where(accept.view(shape), proposal, x)
        grad = torch.where(accept.view(shape), grad_new, grad)
        log_r = torch.where(accept, log_r_new, log_r)
        count = accept.sum(dtype=torch.float64)
        since, total, proposals_since = since + count, total + count, proposals_since + n
        if i % RATE_WINDOW == 0:
            rate = since / proposals_since
            since, proposals_since = torch.zeros_like(since), 0
        if i > burn_in:
            kept[i - burn_in - 1] = proposal
            kept_log_r[i - burn_in - 1] = log_r_new
            kept_mask[i - burn_in - 1] = accept
    return MalaResult(
        x, log_r, kept[kept_mask], kept_log_r[kept_mask], h, total / max(1, steps * n)
    )


class RankBuffer(nn.Module):
    """A first-in-first-out buffer of samples and their log-rewards, drawn by rank.

    Sample i of the N held is drawn with probability w_i / Σ w, w_i = 1 / (k N + rank_i), rank 0
    the highest log-reward (ties ranked in the order held; a NaN log-reward ranks last). Its
    tensors are registered buffers (``rank_x``, ``rank_log_r``, ``rank_count``), so a checkpoint
    keeps them.

    :param size: how many samples it holds (the oldest are replaced).
    :param shape: the shape of one sample.
    :param rank_weight: k.
    """

    def __init__(self, size: int, shape: tuple[int, ...], rank_weight: float) -> None:
        super().__init__()
        self.rank_weight = float(rank_weight)
        self.register_buffer("rank_x", torch.zeros((int(size), *shape)))
        self.register_buffer("rank_log_r", torch.zeros(int(size)))
        self.register_buffer("rank_count", torch.zeros((), dtype=torch.long))
        self._count: int | None = None  # a host copy of rank_count (read once)
        self._ranked: tuple[Tensor, Tensor] | None = None  # (order, cumulative weights)

    @property
    def count(self) -> int:
        """How many samples were ever added."""
        if self._count is None:
            self._count = int(self.rank_count)
        return self._count

    def __len__(self) -> int:
        return min(self.count, self.rank_x.shape[0])

    def _load_from_state_dict(self, *args: Any, **kwargs: Any) -> None:
        super()._load_from_state_dict(*args, **kwargs)
        self._count, self._ranked = None, None

    def add(self, x: Tensor, log_r: Tensor) -> None:
        """Add ``x`` ``[M, *shape]`` with their log-rewards ``[M]`` (the oldest make room).

        :param x: samples (detached and cast to the buffer's dtype).
        :param log_r: their log-rewards.
        """
        size, m = self.rank_x.shape[0], x.shape[0]
        if m == 0 or size == 0:
            return
        if m > size:
            x, log_r, self._count = x[-size:], log_r[-size:], self.count + m - size
            m = size
        index = (torch.arange(m, device=self.rank_x.device) + self.count % size) % size
        self.rank_x[index] = x.detach().to(self.rank_x.dtype)
        self.rank_log_r[index] = log_r.detach().to(self.rank_log_r.dtype)
        self._count = self.count + m
        self.rank_count.fill_(self._count)
        self._ranked = None

    def _ranking(self) -> tuple[Tensor, Tensor]:
        """The indices held, best first, and the cumulative rank weights (cached until an add)."""
        device = self.rank_x.device
        if self._ranked is None or self._ranked[0].device != device:
            held = len(self)
            scores = self.rank_log_r[:held].nan_to_num(nan=-math.inf)
            order = torch.argsort(scores, descending=True, stable=True)
            rank = torch.arange(held, device=device, dtype=torch.float64)
            weights = 1.0 / (self.rank_weight * held + rank)
            self._ranked = (order, weights.cumsum(0))
        return self._ranked

    def probabilities(self) -> Tensor:
        """The probability of drawing each sample held, ``[len(self)]`` (float64)."""
        order, cumulative = self._ranking()
        weights = torch.diff(cumulative, prepend=cumulative.new_zeros(1))
        out = torch.empty_like(weights)
        out[order] = weights / cumulative[-1]
        return out

    def sample(self, n: int) -> tuple[Tensor, Tensor]:
        """``n`` samples drawn with replacement by rank, with their log-rewards.

        :returns: ``([n, *shape], [n])``.
        :raises DtgRuntimeError: when the buffer is empty.
        """
        if len(self) == 0:
            raise DtgRuntimeError("local search: a buffer to sample from is still empty")
        order, cumulative = self._ranking()
        u = torch.rand(n, device=cumulative.device, dtype=torch.float64) * cumulative[-1]
        position = torch.searchsorted(cumulative, u, right=True).clamp(max=len(order) - 1)
        index = order[position]
        return self.rank_x[index], self.rank_log_r[index]


class LocalSearch(nn.Module):
    """The local-search part of a balance objective: two rank buffers and the MALA rounds.

    Iterations alternate: even ones train on-policy and add their terminal states to ``policy``;
    odd ones train on destruction trajectories from samples of ``found``. On an odd iteration
    ``s`` with ``s % ls_every < 2`` a round of MALA first runs from samples of ``policy`` and
    adds the proposals it accepted after the burn-in to ``found``.

    :param shape: the shape of one sample.
    :param options: the objective's options (``ls_*``).
    """

    def __init__(self, shape: tuple[int, ...], options: dict) -> None:
        super().__init__()
        self.every = int(options.get("ls_every") or 100)
        self.steps = int(options.get("ls_steps") or 200)
        burn = options.get("ls_burn_in")
        self.burn_in = 100 if burn is None else int(burn)
        self.step_size = float(options.get("ls_step_size") or 0.1)
        self.target = float(options.get("ls_target_accept") or 0.574)
        if self.burn_in >= self.steps - 1:
            raise DtgRuntimeError(
                f"local search keeps the proposals after ls_burn_in = {self.burn_in} of "
                f"ls_steps = {self.steps} steps: none are left; make ls_steps > ls_burn_in + 1"
            )
        size = int(options.get("ls_buffer") or 600_000)
        weight = float(options.get("ls_rank_weight") or 0.01)
        self.policy = RankBuffer(size, shape, weight)
        self.found = RankBuffer(size, shape, weight)
        self._last: dict[str, float] = {}

    def off_policy(self, step: int) -> bool:
        """Whether iteration ``step`` (from 0) trains on destruction trajectories from ``found``."""
        return step % 2 == 1

    def due(self, step: int) -> bool:
        """Whether a round of MALA runs at iteration ``step`` (gfn-diffusion's rule)."""
        return self.off_policy(step) and step % self.every < 2

    def remember(self, x0: Tensor, log_r: Tensor) -> None:
        """Add on-policy terminal states ``[B, *shape]`` and their log-rewards ``[B]``."""
        self.policy.add(x0, log_r)

    def search(self, log_r_fn: Callable[[Tensor], Tensor], n: int) -> MalaResult | None:
        """One round: MALA from ``n`` rank-drawn samples of ``policy``; its accepted proposals
        after the burn-in go to ``found``.

        :returns: the MALA result, or ``None`` while ``policy`` is empty.
        """
        if len(self.policy) == 0:
            return None
        with expected_sync():  # a round every `every` steps reads back how many it kept
            start, _ = self.policy.sample(n)
            result = mala(log_r_fn, start, self.steps, self.burn_in, self.step_size, self.target)
            self.found.add(result.samples, result.samples_log_r)
            self._last = {
                "ls_accept": float(result.accept_rate),
                "ls_step_size": float(result.step_size),
                "ls_found": float(result.samples.shape[0]),
            }
        return result

    def starts(self, n: int) -> Tensor | None:
        """``n`` rank-drawn samples of ``found`` to start destruction trajectories from, or
        ``None`` while it is empty."""
        if len(self.found) == 0:
            return None
        return self.found.sample(n)[0]

    def metrics(self) -> dict[str, float]:
        """The last round's acceptance rate, final step size and number of samples kept, and
        the sizes of both buffers."""
        return {
            **self._last,
            "ls_buffer": float(len(self.found)),
            "policy_buffer": float(len(self.policy)),
        }

"""Fine-tuning a trained model toward a reward: relative trajectory balance and DDPO.

The child model (``model child extends parent``) holds a frozen copy of the parent's generation
chain, the *prior* p₀, and trains its own copy, the *posterior* p_θ, toward p₀(x) r(x)^β.

* ``relative_trajectory_balance(beta)`` (Venkatraman et al. 2024, arXiv 2405.20971):
  L = (log Z + log p_θ(τ) − log p₀(τ) − β log r(x[0]))² on posterior trajectories τ, prior
  log-probabilities without gradients; ``vargrad = true`` uses the batch variance instead of a
  learned log Z; ``clip`` clips the squared residual; ``replay = N`` mixes in trajectories run
  backward by the destruction chain from a buffer of past samples (off-policy).
* ``policy_gradient(clip)`` (DDPO, Black et al. 2023, arXiv 2305.13301): per-level PPO-clip on the
  generation chain with ratio ρ = exp(log p_θ − log p_old), advantages normalised over the batch
  (or within groups of ``group`` samples, ``advantage = group``: GRPO, Shao et al. 2024, arXiv
  2402.03300) and clipped to ±5; each sampled batch is reused for ``epochs`` consecutive training
  steps; ``kl`` adds a penalty kl · (log p_θ(τ) − log p₀(τ)).

Both score a sample by its exact trajectory log-probability by default; ``scoring = diffu_grpo``
or ``coupled`` uses an order-free score of x[0] instead (masked diffusion only,
:mod:`dtg.objectives.scoring`), per token in PPO's ratios.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ..ir.options import Advantage, Scoring
from .balance import start_log_z
from .scoring import order_free_log_probs, score_masks
from .trajectories import (
    clip_residuals,
    destroy_trajectories,
    generation_log_probs,
    sample_trajectories,
)

__all__ = [
    "RelativeTB",
    "PolicyGradient",
    "rtb_residual",
    "ppo_clip_loss",
    "group_advantages",
]

ADVANTAGE_CLIP = 5.0


def rtb_residual(
    log_z: Tensor, log_post: Tensor, log_prior: Tensor, log_reward: Tensor, beta: float
) -> Tensor:
    """log Z + log p_θ(τ) − log p₀(τ) − β log r(x[0]), per trajectory ``[B]``."""
    return log_z + log_post - log_prior - beta * log_reward


def ppo_clip_loss(log_p: Tensor, log_p_old: Tensor, advantages: Tensor, clip: float) -> Tensor:
    """The PPO-clip surrogate, averaged over levels and trajectories.

    :param log_p: ``[B, T]`` per-level log-probabilities under the current policy.
    :param log_p_old: ``[B, T]`` the same under the policy that sampled.
    :param advantages: ``[B]`` normalised advantages.
    """
    ratio = torch.exp(log_p - log_p_old)
    advantages = advantages[:, None]
    unclipped = -advantages * ratio
    # The bounds in the ratio's dtype: torch refuses 1 ± a clip it cannot represent.
    largest = torch.finfo(ratio.dtype).max
    clipped = -advantages * torch.clamp(ratio, max(1.0 - clip, -largest), min(1.0 + clip, largest))
    return torch.maximum(unclipped, clipped).mean()


def _normalised(grouped: Tensor) -> Tensor:
    """Rows ``[G, n]`` centred and scaled by their unbiased std (0 for a row of one)."""
    centred = grouped - grouped.mean(1, keepdim=True)
    if grouped.shape[1] < 2:
        return torch.zeros_like(grouped)
    return centred / (grouped.std(1, keepdim=True) + 1e-8)


def group_advantages(rewards: Tensor, group: int) -> Tensor:
    """GRPO's advantages: rewards normalised within consecutive groups of ``group`` samples,
    ``(r − mean_g) / (std_g + 1e-8)`` (the unbiased std, as for the batch), clipped to ±5. When
    the batch is not a multiple of ``group`` the last group is the remainder (a group of one
    has advantage 0).

    :param rewards: ``[B]``. :returns: ``[B]``.
    """
    full = rewards.shape[0] // group * group
    parts = [_normalised(rewards[:full].reshape(-1, group)).reshape(-1)] if full else []
    if full < rewards.shape[0]:
        parts.append(_normalised(rewards[full:].reshape(1, -1)).reshape(-1))
    return torch.cat(parts).clamp(-ADVANTAGE_CLIP, ADVANTAGE_CLIP)


class _FineTune(nn.Module):
    def __init__(self, model: Any, options: dict) -> None:
        super().__init__()
        self._model = [model]
        self.options = dict(options)
        self._last: dict[str, Tensor] = {}

    @property
    def model(self) -> Any:
        return self._model[0]

    @property
    def prior(self) -> Any:
        return self.model.prior

    def _prior_log_prob(self, states: list[Tensor]) -> Tensor:
        with torch.no_grad():
            log_start, log_steps = generation_log_probs(self.prior, states)
        return log_start + log_steps.sum(1)

    def metrics(self) -> dict[str, float]:
        return {k: float(v) for k, v in self._last.items()}  # read here, at a metrics line

    @property
    def scoring(self) -> Scoring:
        return Scoring(self.options.get("scoring") or Scoring.TRAJECTORY)

    def _order_free(self, x0: Tensor, masks: list) -> tuple[Tensor, Tensor]:
        """Per-token log-probabilities ``[B, L]`` of ``x0`` under the posterior (with
        gradients) and the prior (without), from the same passes ``masks``."""
        with torch.no_grad():
            prior = order_free_log_probs(self.prior.generate, x0, masks)
        return order_free_log_probs(self.model.generate, x0, masks), prior


class RelativeTB(_FineTune):
    """Relative trajectory balance (see the module docstring)."""

    def __init__(self, model: Any, options: dict) -> None:
        super().__init__(model, options)
        self.log_z = nn.Parameter(torch.zeros(()))
        self.register_buffer("log_z_started", torch.zeros((), dtype=torch.bool))
        size = int(options.get("replay") or 0)
        self.register_buffer("replay_x", torch.zeros((size, *model.ir.message.space.shape)))
        self.register_buffer("replay_count", torch.zeros((), dtype=torch.long))

    def param_groups(self, lr: float) -> list[dict]:
        main = [p for p in self.model.parameters() if p.requires_grad and p is not self.log_z]
        groups = [{"params": main, "lr": lr}]
        if not self.options.get("vargrad"):
            groups.append({"params": [self.log_z], "lr": float(self.options.get("lr_logZ") or 0.1)})
        return groups

    def forward(self, batch: Any) -> Tensor:
        n = int(batch) if not isinstance(batch, Tensor) else batch.shape[0]
        model = self.model
        use_replay = self.replay_x.shape[0] > 0 and int(self.replay_count) >= n // 2
        on_policy = n - n // 2 if use_replay else n
        traj = sample_trajectories(model, on_policy, with_destruction=False)
        if self.replay_x.shape[0] > 0:
            self._remember(traj.states[0])
        if use_replay:
            filled = min(int(self.replay_count), self.replay_x.shape[0])
            index = torch.randint(filled, (n // 2,), device=self.replay_x.device)
            replayed = self.replay_x[index].to(traj.states[0].dtype)  # tokens: kept as floats
            traj = traj.cat(destroy_trajectories(model, replayed))
        if self.scoring is Scoring.TRAJECTORY:
            log_post = traj.log_start + traj.log_pf.sum(1)
            log_prior = self._prior_log_prob(traj.states)
        else:  # an order-free score of x[0] (scoring.py), the same passes for both
            x0 = traj.states[0].long()
            post, prior = self._order_free(x0, score_masks(self.scoring, model, x0))
            log_post, log_prior = post.sum(1), prior.sum(1)
        beta = float(self.options.get("beta") or 1.0)
        if self.options.get("vargrad"):
            delta = log_post - log_prior - beta * traj.log_reward
            loss = ((delta - delta.mean()) ** 2).mean()
            log_z = -delta.detach().mean()
        else:
            start_log_z(self, log_prior + beta * traj.log_reward - log_post)
            per = rtb_residual(self.log_z, log_post, log_prior, traj.log_reward, beta) ** 2
            loss = clip_residuals(per, self.options.get("clip")).mean()
            log_z = self.log_z.detach().clone()
        # on the device until a metrics line reads them (no per-step sync)
        self._last = {"log_z": log_z, "reward": traj.log_reward.detach().mean()}
        return loss

    def _remember(self, x0: Tensor) -> None:
        size = self.replay_x.shape[0]
        index = (torch.arange(x0.shape[0], device=x0.device) + int(self.replay_count)) % size
        self.replay_x[index] = x0.detach().to(self.replay_x.dtype)
        self.replay_count += x0.shape[0]


class PolicyGradient(_FineTune):
    """DDPO with PPO-clip (see the module docstring)."""

    def __init__(self, model: Any, options: dict) -> None:
        super().__init__(model, options)
        self._cache: tuple | None = None
        self._epoch = 0

    def forward(self, batch: Any) -> Tensor:
        n = int(batch) if not isinstance(batch, Tensor) else batch.shape[0]
        epochs = int(self.options.get("epochs") or 1)
        if self._cache is None or self._epoch >= epochs:
            with torch.no_grad():
                traj = sample_trajectories(self.model, n, with_destruction=False)
                rewards = traj.log_reward
                advantages = self._advantages(rewards)
                states = [s.detach() for s in traj.states]
                masks, old, prior = None, traj.log_pf.detach(), None
                if self.scoring is not Scoring.TRAJECTORY:  # the same passes for every epoch
                    x0 = states[0].long()
                    masks = score_masks(self.scoring, self.model, x0)
                    old, prior = self._order_free(x0, masks)
                    prior = prior.sum(1)
                elif self.options.get("kl"):
                    prior = self._prior_log_prob(states)
            self._cache = (states, old, advantages, prior, masks)
            self._epoch = 0
            self._last = {"reward": rewards.detach().mean()}
        self._epoch += 1
        states, old, advantages, prior, masks = self._cache
        if masks is None:
            _, log_p = generation_log_probs(self.model, states)
        else:
            log_p = order_free_log_probs(self.model.generate, states[0].long(), masks)
        loss = ppo_clip_loss(log_p, old, advantages, float(self.options.get("clip") or 1e-4))
        kl = float(self.options.get("kl") or 0.0)
        if kl and prior is not None:
            loss = loss + kl * (log_p.sum(1) - prior).mean()
        return loss

    def _advantages(self, rewards: Tensor) -> Tensor:
        """Normalised over the batch, or within groups (``advantage = group``, GRPO)."""
        if Advantage(self.options.get("advantage") or Advantage.BATCH) is Advantage.GROUP:
            return group_advantages(rewards, int(self.options.get("group") or 8))
        advantages = (rewards - rewards.mean()) / (rewards.std() + 1e-8)
        return advantages.clamp(-ADVANTAGE_CLIP, ADVANTAGE_CLIP)

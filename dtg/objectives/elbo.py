"""The ``elbo`` objective: −ELBO through the Pyro lowering, for any kernels (a VAE is ``T = 1``).

The loss is Pyro's ``Trace_ELBO().differentiable_loss(model, guide, batch)`` of the lowering
(:func:`dtg.backends.pyro.lower`) divided by the batch size: the negative ELBO per example,
averaged over the batch, in nats. ``objective elbo(particles = K)`` averages ``K`` particles,
vectorised (``vectorize_particles``: one extra plate, no Python loop).

``TraceMeanField_ELBO`` (analytic KL terms) is used instead when it is exact, detected on the first
batch: the guide is mean-field for this model — for every latent level z, the model's kernel of z
reads no level that the guide draws after z; in a chain ``x[t] ⇀ x[t-1]`` this holds iff
``T = 1`` — and every latent site has a reparameterised guide and a registered KL (e.g. Normal
encoder and Normal prior). The nets are trained by the dtg loop through ``model.parameters()``:
the lowering made here registers nothing in Pyro's param store, so compiled models in one process
never share Pyro state.

**KL options** (``beta``, ``kl_warmup``, ``free_bits``). The negative ELBO splits into the
reconstruction ``−log p(x[0] | x[1])`` (with the reward's factor, if any) and one KL term per
latent level ``l = 1 … T``: ``KL_l = log q(x[l] | x[l-1]) − log p(x[l] | x[l+1])`` at the guide's
draw (the start's density at ``l = T``), or the analytic ``KL(q ‖ p)`` when that is exact (above).
With any option given the loss is, per example and averaged over the batch (and the ``K``
particles, drawn in a Python loop)::

    mean_b(rec_b) + w · Σ_l max(mean_b KL_l,b, free_bits)

with ``w = beta · min(1, s / kl_warmup)`` at training step ``s`` (``s = 0`` on the first step;
``w = beta`` without warm-up). Free bits follow Kingma et al. (2016, IAF, "free bits"): the floor
``λ = free_bits`` nats applies to each level's KL *summed over the level's dimensions* and
averaged over the minibatch — a level is a group. Latents without a reparameterised sampler
(token levels) get Pyro's score-function surrogate with the same cost, so with the default
options this path has Pyro's value and gradient. The step ``s`` is a buffer (``step``) of the
objective, in the checkpoint with the weights, set by :meth:`Elbo.set_step` (the training loop,
once per step) or else advanced after each training forward pass. With the default options no
buffer exists and the loss is Pyro's (bitwise as before these options).
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import torch
from pyro import poutine
from pyro.infer import Trace_ELBO, TraceMeanField_ELBO
from pyro.poutine.util import prune_subsample_sites
from torch import Tensor, nn
from torch.distributions import kl_divergence

from ..backends.pyro import lower

__all__ = ["Elbo", "LevelTerms", "kl_weight"]


def kl_weight(beta: float, warmup: int, step: Tensor | int) -> Tensor | float:
    """The weight of the KL terms at training step ``step``: ``beta · min(1, step / warmup)``.

    :param beta: the KL weight β after warm-up.
    :param warmup: the warm-up length in steps (0: none, the weight is ``beta`` throughout).
    :param step: steps already taken (0 on the first step): an int, or a 0-d tensor (the result
        is then a float32 tensor on its device, computed without reading it on the host).
    :returns: the weight.
    """
    if not warmup:
        return beta
    if isinstance(step, Tensor):
        return step.clamp(max=warmup).to(torch.float32) * (beta / warmup)
    return beta * min(step, warmup) / warmup


def _mark_restored(module: Elbo, incompatible: Any) -> None:
    """A ``load_state_dict`` post-hook: the objective's model was restored from a checkpoint."""
    module.restored = True


def _keep_rng(device: torch.device):
    """A context that leaves the global random state of ``device`` (and the CPU) as it was."""
    cuda = [device.index or 0] if device.type == "cuda" else []
    return torch.random.fork_rng(devices=cuda)


class LevelTerms:
    """One draw of the terms of −ELBO for a batch of ``B`` examples.

    :param rec: ``[B]``: −log p(x[0] | x[1]) (and minus the reward's factor).
    :param kl: latent level → ``[B]`` KL term, in the model trace's order (``T`` first).
    :param score: ``[B]``: Σ log q of the latents without a reparameterised sampler, or ``None``.
    """

    def __init__(self, rec: Tensor, kl: dict[int, Tensor], score: Tensor | None) -> None:
        self.rec, self.kl, self.score = rec, kl, score

    def nelbo(self) -> Tensor:
        """:returns: ``[B]``: the reconstruction plus every level's KL."""
        total = self.rec
        for value in self.kl.values():
            total = total + value
        return total


class Elbo(nn.Module):
    """The ``elbo`` objective of one compiled model.

    :param model: the :class:`~dtg.backends.torch.CompiledModel` (kept as a plain reference:
        the model owns this objective).
    :param options: ``particles`` (default 1), ``beta`` (1), ``kl_warmup`` (0: off),
        ``free_bits`` (0: off); ``None`` means the default.
    """

    def __init__(self, model: Any, options: dict) -> None:
        super().__init__()
        self._model = [model]  # not a submodule
        self.particles = int(options.get("particles") or 1)
        beta = options.get("beta")
        self.beta = 1.0 if beta is None else float(beta)
        self.warmup = int(options.get("kl_warmup") or 0)
        self.free_bits = float(options.get("free_bits") or 0.0)
        # With the defaults the loss is Pyro's estimator, exactly as before these options.
        self.weighted = self.beta != 1.0 or self.warmup > 0 or self.free_bits > 0
        if self.warmup:
            self.register_buffer("step", torch.zeros((), dtype=torch.long))
        self.driven = False  # set_step was called: the training loop sets the step, not forward
        self.analytic: bool | None = None  # decided on the first batch
        # A model whose state was loaded (a resumed run, dtg eval) decides without drawing.
        self.restored = False
        self.register_load_state_dict_post_hook(_mark_restored)
        self._lowered: tuple[Any, Any] | None = None
        self._estimator: Trace_ELBO | None = None
        self._last: dict[str, Tensor] = {}

    def __getstate__(self) -> dict:
        # The lowering's closures hold this model's channels: a copy builds its own.
        return {**self.__dict__, "_lowered": None, "_estimator": None}

    @property
    def lowered(self) -> tuple[Any, Any]:
        """``(model_fn, guide_fn)``, built on first use, registering nothing with Pyro."""
        if self._lowered is None:
            self._lowered = lower(self._model[0], register=False)
        return self._lowered

    def _traces(self, batch: Tensor):
        model_fn, guide_fn = self.lowered
        guide = poutine.trace(guide_fn).get_trace(batch)
        model = poutine.trace(poutine.replay(model_fn, trace=guide)).get_trace(batch)
        return prune_subsample_sites(model), prune_subsample_sites(guide)

    def _latents(self, model_trace, guide_trace):
        for name, site in model_trace.nodes.items():
            if site["type"] == "sample" and not site["is_observed"]:
                yield name, site, guide_trace.nodes[name]

    def detect_analytic(self, batch: Tensor) -> bool:
        """Whether ``TraceMeanField_ELBO`` is exact here (see the module docstring).

        The trace draws the guide's noise from the global generator, as it always has on a
        fresh model's first batch (the recorded losses of the examples include these draws). A
        model restored from a checkpoint draws on a forked generator instead: a resumed run
        then continues the random stream of the uninterrupted run, which decided at step 1.

        :param batch: data ``[B, *shape]`` (two examples are traced, without gradients).
        """
        if self._model[0].ir.steps != 1:
            return False
        with torch.no_grad(), _keep_rng(batch.device) if self.restored else nullcontext():
            model_trace, guide_trace = self._traces(batch[:2])
            for _, site, guide_site in self._latents(model_trace, guide_trace):
                if not guide_site["fn"].has_rsample:
                    return False
                try:
                    kl_divergence(guide_site["fn"], site["fn"])
                except NotImplementedError:
                    return False
        return True

    def estimator(self, batch: Tensor) -> Trace_ELBO:
        """The Pyro ELBO estimator (chosen once, on the first batch)."""
        if self._estimator is None:
            if self.analytic is None:
                self.analytic = self.detect_analytic(batch)
            kind = TraceMeanField_ELBO if self.analytic else Trace_ELBO
            self._estimator = kind(
                num_particles=self.particles,
                vectorize_particles=self.particles > 1,
                max_plate_nesting=1,
            )
        return self._estimator

    def set_step(self, step: int) -> None:
        """Set the training step the KL warm-up reads (no effect without ``kl_warmup``).

        Once called, the step is the caller's to set: forward passes no longer advance it (the
        loop calls this once per step, and a sharded step runs the loss once per shard).

        :param step: steps already taken (0 before the first).
        """
        self.driven = True
        if self.warmup:
            self.step.fill_(int(step))

    def current_kl_weight(self) -> Tensor | float:
        """:returns: the KL weight of the current step (see :func:`kl_weight`)."""
        return kl_weight(self.beta, self.warmup, self.step if self.warmup else 0)

    def forward(self, batch: Tensor) -> Tensor:
        """−ELBO per example averaged over the batch ``[B, *shape]``: a differentiable scalar
        (with KL options, the weighted loss of the module docstring)."""
        if not self.weighted:
            model_fn, guide_fn = self.lowered
            loss = self.estimator(batch).differentiable_loss(model_fn, guide_fn, batch)
            return loss / batch.shape[0]
        loss = self.weighted_loss(batch)
        if self.warmup and self.training and torch.is_grad_enabled() and not self.driven:
            self.step += 1
        return loss

    def weighted_loss(self, batch: Tensor) -> Tensor:
        """The loss with the KL options at the current step (see the module docstring).

        :param batch: data ``[B, *shape]``.
        :returns: a differentiable scalar whose value is the weighted objective.
        """
        self.estimator(batch)
        draws = [self.terms(batch) for _ in range(self.particles)]
        rec = torch.stack([d.rec for d in draws])  # [K, B]
        levels = sorted(draws[0].kl)
        kl = torch.stack([torch.stack([d.kl[level] for d in draws]) for level in levels])
        weight = self.current_kl_weight()
        kl_mean = kl.mean(dim=(1, 2))  # [L]: each level's KL, over particles and examples
        floored = kl_mean.clamp(min=self.free_bits) if self.free_bits else kl_mean
        if isinstance(weight, Tensor):
            weight = weight.to(floored.dtype)
        loss = rec.mean() + weight * floored.sum()
        scores = [d.score for d in draws]
        if scores[0] is not None:  # score-function surrogate: zero in value, Pyro's gradient
            active = (kl_mean > self.free_bits).to(kl.dtype)[:, None, None]
            cost = (rec + weight * (active * kl).sum(0)).detach()
            surrogate = (torch.stack(scores) * cost).mean()
            loss = loss + (surrogate - surrogate.detach())
        last = kl_mean.detach()
        self._last = {"kl_weight": torch.as_tensor(weight).detach()}
        self._last.update({f"kl_level_{level}": last[i] for i, level in enumerate(levels)})
        return loss

    def terms(self, batch: Tensor) -> LevelTerms:
        """One draw of the reconstruction and per-level KL terms of each example.

        :param batch: data ``[B, *shape]``.
        :returns: the :class:`LevelTerms` (analytic KL when the estimator uses it).
        """
        model_trace, guide_trace = self._traces(batch)
        rec = torch.zeros(batch.shape[0], device=batch.device)
        for site in model_trace.nodes.values():
            if site["type"] == "sample" and site["is_observed"]:
                rec = rec - site["fn"].log_prob(site["value"])
        kl: dict[int, Tensor] = {}
        score: Tensor | None = None
        for name, site, guide_site in self._latents(model_trace, guide_trace):
            level = int(name.rsplit("_", 1)[1])
            if self.analytic:
                kl[level] = kl_divergence(guide_site["fn"], site["fn"])
                continue
            value = guide_site["value"]
            log_q = guide_site["fn"].log_prob(value)
            kl[level] = log_q - site["fn"].log_prob(value)
            if not guide_site["fn"].has_rsample:
                score = log_q if score is None else score + log_q
        return LevelTerms(rec, kl, score)

    def nelbo(self, batch: Tensor, levels: int = 0) -> Tensor:
        """A single-sample estimate of −ELBO for each example (the estimator's terms, analytic
        KL included when used): ``[B]`` nats. ``levels`` is unused: one sampled trajectory
        already scores every level once."""
        self.estimator(batch)
        return self.terms(batch).nelbo()

    @torch.no_grad()
    def per_level_kl(self, data: Tensor, batch: int = 500) -> dict[str, float]:
        """Each latent level's KL term averaged over ``data`` (one draw per example, analytic
        when the estimator is): ``{"kl_level_1": …, …, "kl_level_T": …}`` in nats.

        :param data: examples ``[N, *shape]`` (e.g. the held-out split).
        :param batch: examples scored at a time.
        :returns: the mean KL of each level, ``kl_level_1`` first.
        """
        self.estimator(data)
        sums: dict[int, Tensor] = {}
        for start in range(0, len(data), batch):
            for level, value in self.terms(data[start : start + batch]).kl.items():
                sums[level] = sums.get(level, 0.0) + value.double().sum()
        return {f"kl_level_{lv}": float(sums[lv]) / len(data) for lv in sorted(sums)}

    def metrics(self) -> dict[str, Tensor]:
        """The last training step's KL weight and per-level KL (with KL options only)."""
        return dict(self._last)

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
"""

from __future__ import annotations

from typing import Any

import torch
from pyro import poutine
from pyro.infer import Trace_ELBO, TraceMeanField_ELBO
from pyro.poutine.util import prune_subsample_sites
from torch import Tensor, nn
from torch.distributions import kl_divergence

from ..backends.pyro import lower

__all__ = ["Elbo"]


class Elbo(nn.Module):
    """The ``elbo`` objective of one compiled model.

    :param model: the :class:`~dtg.backends.torch.CompiledModel` (kept as a plain reference:
        the model owns this objective).
    :param options: ``particles`` (default 1).
    """

    def __init__(self, model: Any, options: dict) -> None:
        super().__init__()
        self._model = [model]  # not a submodule
        self.particles = int(options.get("particles", 1))
        self.analytic: bool | None = None  # decided on the first batch
        self._lowered: tuple[Any, Any] | None = None
        self._estimator: Trace_ELBO | None = None

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

        :param batch: data ``[B, *shape]`` (two examples are traced, without gradients).
        """
        if self._model[0].ir.steps != 1:
            return False
        with torch.no_grad():
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

    def forward(self, batch: Tensor) -> Tensor:
        """−ELBO per example averaged over the batch ``[B, *shape]``: a differentiable scalar."""
        model_fn, guide_fn = self.lowered
        loss = self.estimator(batch).differentiable_loss(model_fn, guide_fn, batch)
        return loss / batch.shape[0]

    def nelbo(self, batch: Tensor) -> Tensor:
        """A single-sample estimate of −ELBO for each example (the estimator's terms, analytic
        KL included when used): ``[B]`` nats."""
        self.estimator(batch)
        model_trace, guide_trace = self._traces(batch)
        total = torch.zeros(batch.shape[0], device=batch.device)
        for site in model_trace.nodes.values():
            if site["type"] == "sample" and site["is_observed"]:
                total = total - site["fn"].log_prob(site["value"])
        for _, site, guide_site in self._latents(model_trace, guide_trace):
            if self.analytic:
                total = total + kl_divergence(guide_site["fn"], site["fn"])
            else:
                value = guide_site["value"]
                total = total + guide_site["fn"].log_prob(value) - site["fn"].log_prob(value)
        return total

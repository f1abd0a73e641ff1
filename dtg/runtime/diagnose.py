"""Find where a NaN or inf comes from: which parameter, or which channel at which level.

When training meets a non-finite loss or gradient, :func:`first_non_finite` replays the chains
on (a slice of) the batch without gradients, level by level, in the order the objective runs
them, and names the first place a value stops being finite: a net's parameter, the data, the
destruction channel at level t (its marginal, its sample or its log-probability), the generation
channel at level t (its log-probability of the destruction's step, its sample for samplers, or
the prediction of a Gaussian ``Guess``'s net, which the denoising loss squares, so a finite
prediction whose square overflows counts too), the start, the frozen prior of a fine-tuned
model, or the reward; failing those, a parameter of the objective (log Z) or a table (a buffer).

Every family is replayed: Gaussian denoising, masking and other discrete token models (whose
samples are integers, so only their log-probabilities can go wrong), ``MashLast``
autoregressive models, ELBO models, samplers and fine-tuning. A log-probability of tokens may be
−inf (an impossible value, e.g. unmasking a wrong token): only NaN and +inf count there; a
log-density of real values or a log-reward of −inf counts.

:func:`first_non_finite_gradient` replays the same chains with gradients and names the first
log-probability (or prediction) whose gradient is not finite, with the parameter it reaches;
:func:`largest_gradient` names the largest one, for a gradient norm that overflows although
every gradient is finite.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor

from ..channels.base import level_tensor
from ..channels.guess import GaussianGuess

__all__ = ["first_non_finite", "first_non_finite_gradient", "largest_gradient"]

#: What a replay observes: where, in words; the value; its kind (:data:`SAMPLE`, …).
Observation = tuple[str, Tensor, str]
#: A draw of a level: any NaN or inf is wrong.
SAMPLE = "sample"
#: A log-density of a real-valued level, or a log-reward: any NaN or ±inf is wrong.
DENSITY = "density"
#: A log-probability of tokens: −inf is an impossible value, only NaN and +inf are wrong.
MASS = "mass"
#: A net's prediction that a loss squares: also wrong when its square overflows.
PREDICTION = "prediction"


def _bad_values(x: Tensor) -> bool:
    return x.is_floating_point() and not bool(torch.isfinite(x).all())


def _bad_log_prob(x: Tensor) -> bool:
    return x.is_floating_point() and bool(torch.isnan(x).any() or (x == float("inf")).any())


def _too_large(x: Tensor) -> bool:
    return x.is_floating_point() and bool((x.abs() > torch.finfo(x.dtype).max ** 0.5).any())


def _bad(value: Tensor, kind: str) -> bool:
    if kind == MASS:
        return _bad_log_prob(value)
    return _bad_values(value) or (kind == PREDICTION and _too_large(value))


def _why(value: Tensor, kind: str) -> str:
    """Why a finite prediction is wrong (its square overflows)."""
    if kind == PREDICTION and not _bad_values(value):
        kind_name = str(value.dtype).removeprefix("torch.")
        return f" is {float(value.abs().max()):.3g}: its square overflows {kind_name}"
    return ""


def _describe(model: Any, role: str, level: int) -> str:
    channel = getattr(model.ir, f"{role}_at")(level)
    nets = ", ".join(sorted(getattr(channel, "nets", ()) or ()))
    family = getattr(getattr(channel, "family", None), "value", "")
    detail = ", ".join(part for part in (family, f"nets: {nets}" if nets else "") if part)
    return f"the {role} channel" + (f" ({detail})" if detail else "")


def _marginal(model: Any, x0: Tensor, level: Tensor) -> tuple[Tensor, str] | None:
    """The destruction's closed form q(x[t] | x[0]) at ``level``: a Gaussian draw (a value), the
    per-position log-probabilities of a discrete channel, or ``None`` when it has none."""
    if model.ir.per_level:  # a template's closed form is not the chain's
        return None
    destroy = model.destroy
    if x0.is_floating_point() and hasattr(destroy, "marginal"):
        return destroy.marginal(x0, level, torch.randn_like(x0)), SAMPLE  # linear-Gaussian
    if hasattr(destroy, "marginal_log_probs"):  # Mask, Shuffle
        return destroy.marginal_log_probs(x0, level), MASS
    return None  # MashLast (deterministic) or a Normal kernel


def _destruction(model: Any, x0: Tensor) -> Iterator[Observation]:
    """Observations along the destruction chain x[0] → … → x[T] of the data ``x0``."""
    steps, device, n = model.ir.steps, model.device, x0.shape[0]
    x, kind = x0, DENSITY if x0.is_floating_point() else MASS
    for t in range(1, steps + 1):
        level = level_tensor(t, n, device)
        destroy_t, generate_t = model.channel("destroy", t), model.channel("generate", t)
        destroy, generate = _describe(model, "destroy", t), _describe(model, "generate", t)
        closed = _marginal(model, x0, level)
        if closed is not None:
            yield f"{destroy} at level t = {t} (q(x[{t}] | x[0]))", *closed
        following = destroy_t.sample(x, level)
        yield f"{destroy} at level t = {t} (its sample x[{t}])", following, SAMPLE
        where = f"{destroy} at level t = {t} (log q(x[{t}] | x[{t - 1}]))"
        yield where, destroy_t.log_prob(following, x, level), kind
        if isinstance(generate_t, GaussianGuess):  # the denoising loss squares its output
            where = f"{generate} at level t = {t} (its net's prediction from x[{t}])"
            yield where, generate_t.net(following, level), PREDICTION
        where = f"{generate} at level t = {t} (log p(x[{t - 1}] | x[{t}]))"
        yield where, generate_t.log_prob(x, following, level), kind
        x = following
    level = level_tensor(steps, n, device)
    yield f"the start p(x[{steps}])", model.start.log_prob(x, None, level), kind


def _generation(model: Any, n: int) -> Iterator[Observation]:
    """Observations along ``n`` generation trajectories x[T] → … → x[0], then the reward."""
    steps, device = model.ir.steps, model.device
    prior = getattr(model, "prior", None)
    level = level_tensor(steps, n, device)
    x = model.start.sample(None, level).detach()
    kind = DENSITY if x.is_floating_point() else MASS
    yield f"the start p(x[{steps}]) (its sample)", x, SAMPLE
    yield f"the start p(x[{steps}])", model.start.log_prob(x, None, level), kind
    for t in range(steps, 0, -1):
        level = level_tensor(t, n, device)
        destroy_t, generate_t = model.channel("destroy", t), model.channel("generate", t)
        destroy, generate = _describe(model, "destroy", t), _describe(model, "generate", t)
        previous = generate_t.sample(x, level)
        yield f"{generate} at level t = {t} (its sample x[{t - 1}])", previous, SAMPLE
        previous = previous.detach()  # states are detached, as in the objectives
        where = f"{generate} at level t = {t} (log p(x[{t - 1}] | x[{t}]))"
        yield where, generate_t.log_prob(previous, x, level), kind
        where = f"{destroy} at level t = {t} (log q(x[{t}] | x[{t - 1}]))"
        yield where, destroy_t.log_prob(x, previous, level), kind
        if prior is not None:  # the frozen parent of a fine-tuned model
            where = f"the prior's generate channel at level t = {t} (log p₀(x[{t - 1}] | x[{t}]))"
            yield where, prior.generate.log_prob(previous, x, level), kind
        x = previous
    if model.reward_fn is not None:
        where = f"the reward '{model.ir.reward.name}' of the samples x[0]"
        yield where, model.reward_fn(x), DENSITY  # log r = −inf breaks every balance loss


def _observations(model: Any, data: Tensor | int, limit: int) -> Iterator[Observation]:
    """The replay of the chains that the objective runs on ``data`` (its first ``limit``)."""
    if isinstance(data, Tensor):
        x = data[:limit].to(model.device)
        yield "the data batch itself", x, SAMPLE
        yield from _destruction(model, x)
        if model.reward_fn is None:
            return
        n = x.shape[0]  # fine-tuning toward a reward also runs generation trajectories
    else:
        n = min(int(data), limit)
    yield from _generation(model, n)


def _bad_parameter(model: Any, objective: bool) -> str | None:
    """A non-finite parameter of the chains' nets, or (``objective``) of the objective (log Z,
    flows: the replay does not use those, so a bad one is only blamed when the replay is clean)."""
    for name, parameter in model.named_parameters():
        if name.startswith("objective.") == objective and _bad_values(parameter):
            return f"the parameter {name} is not finite"
    return None


def _bad_table(model: Any) -> str | None:
    """A buffer (a schedule's table, an objective's weights) with a NaN or inf entry."""
    steps = int(model.ir.steps)
    for name, buffer in model.named_buffers():
        if not _bad_values(buffer):
            continue
        if buffer.dim() >= 1 and buffer.shape[0] == steps + 1:
            bad = (~torch.isfinite(buffer)).reshape(steps + 1, -1).any(dim=1)
            return f"the table {name} is not finite at level t = {int(bad.nonzero()[0])}"
        return f"the table {name} is not finite"
    return None


@torch.no_grad()
def first_non_finite(model: Any, data: Tensor | int, limit: int = 64) -> str | None:
    """Where the first non-finite value appears, in words; ``None`` when the replay is finite.

    :param model: a compiled model.
    :param data: the batch that failed (``[B, *shape]``) or, for samplers, its size.
    :param limit: replay at most this many examples.
    :returns: e.g. "the destroy channel (Mask) at level t = 7 (log q(x[7] | x[6]))".
    """
    found = _bad_parameter(model, objective=False)
    if found is not None:
        return found
    for where, value, kind in _observations(model, data, limit):
        if _bad(value, kind):
            return where + _why(value, kind)
    return _bad_parameter(model, objective=True) or _bad_table(model)


def _gradients(model: Any, data: Tensor | int, limit: int) -> Iterator[tuple[str, str, Tensor]]:
    """``(where, parameter, gradient)`` of each log-probability and prediction of the replay."""
    named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    params = [p for _, p in named]
    with torch.enable_grad():
        for where, value, kind in _observations(model, data, limit):
            if not (params and kind != SAMPLE and value.requires_grad):
                continue
            term = value[torch.isfinite(value)].sum()  # −inf: impossible values, no gradient
            grads = torch.autograd.grad(term, params, allow_unused=True, retain_graph=True)
            for (name, _), grad in zip(named, grads, strict=True):
                if grad is not None:
                    yield where, name, grad


def first_non_finite_gradient(model: Any, data: Tensor | int, limit: int = 64) -> str | None:
    """The first log-probability of the replay whose gradient is not finite, in words, with
    the parameter it reaches; ``None`` when every gradient is finite.

    :param model: a compiled model.
    :param data: the batch that failed (``[B, *shape]``) or, for samplers, its size.
    :param limit: replay at most this many examples.
    :returns: e.g. "the gradient of the generate channel (Guess, nets: eps) at level t = 7
        (log p(x[6] | x[7])) with respect to nets.eps.body.0.weight".
    """
    for where, name, grad in _gradients(model, data, limit):
        if not bool(torch.isfinite(grad).all()):
            return f"the gradient of {where} with respect to {name}"
    return None


def largest_gradient(model: Any, data: Tensor | int, limit: int = 64) -> str | None:
    """The largest gradient of the replay's log-probabilities, in words (a gradient norm over
    ~1.8e19 overflows in float32 even when every entry is finite).

    :param model: a compiled model.
    :param data: the batch (``[B, *shape]``) or, for samplers, its size.
    :param limit: replay at most this many examples.
    :returns: e.g. "norm 3.1e+21, of the generate channel (…) at level t = 7 (…) with respect
        to nets.eps.body.0.weight"; ``None`` when no log-probability reaches a parameter.
    """
    largest: tuple[float, str] | None = None
    for where, name, grad in _gradients(model, data, limit):
        norm = float(torch.linalg.vector_norm(grad.double()))
        if largest is None or not norm <= largest[0]:  # NaN counts as the largest
            largest = (norm, f"{where} with respect to {name}")
    return None if largest is None else f"norm {largest[0]:.3g}, of {largest[1]}"

"""Which objectives fit which kernels, and the options each objective and ``train`` accept.

The fit rules follow DESIGN.md §1: ``denoising`` needs fixed linear-Gaussian destruction and a
``Guess``; ``masking`` needs ``Mask``/``MashLast``/``Shuffle`` destruction of tokens; ``elbo``
takes any data model; the trajectory-balance family needs a reward; the fine-tuning objectives
need a reward and a parent model (``extends``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sympy as sp

from ..ir import Channel, Family, ObjectiveKind
from ..ir.options import OBJECTIVE_OPTIONS, TRAIN_OPTIONS, OptionSpec
from . import symbolic

__all__ = [
    "masking_problem",
    "scoring_problem",
    "continuous_weights",
    "OptionSpec",
    "OBJECTIVE_OPTIONS",
    "TRAIN_OPTIONS",
    "misfit",
    "fitting_objectives",
]


def misfit(kind: ObjectiveKind, facts: dict[str, Any]) -> str | None:
    """Why ``kind`` does not fit a model, or ``None`` when it fits.

    :param facts: ``role`` (data/target), ``destroy``/``generate``/``start`` families,
        ``learned_destroy``, ``reward`` (bool), ``parent`` (bool), ``space_kind``,
        ``per_level`` (the line of the first kernel for a single level, or ``None``).
    """
    destroy, generate = facts["destroy"], facts["generate"]
    line = facts.get("per_level")
    if line is not None and kind is not ObjectiveKind.ELBO:
        return (
            f"the model gives single levels kernels of their own (line {line}), and "
            f"{kind.value} needs one kernel template with a known form at every level; "
            "elbo trains per-level kernels"
        )
    if kind is ObjectiveKind.DENOISING:
        if facts["role"] != "data":
            return "denoising trains on data, but this model declares no data"
        if destroy is not Family.LINEAR_GAUSSIAN:
            why = "its destruction contains nets" if facts["learned_destroy"] else "it is not"
            return (
                "denoising needs a fixed linear-Gaussian destruction "
                f"(Normal(a(t) * x[t-1], s(t))), and {why}"
            )
        if generate is not Family.GUESS:
            return "denoising trains a Guess generation kernel: generate x[t-1] ~ Guess(x[t], net)"
        return None
    if kind is ObjectiveKind.MASKING:
        if facts["role"] != "data":
            return "masking trains on data, but this model declares no data"
        if destroy not in (Family.MASK, Family.MASH_LAST, Family.MASH_RANDOM, Family.SHUFFLE):
            return (
                "masking needs a Mask, MashLast, MashRandom or Shuffle destruction of tokens, "
                f"but the destruction is {destroy.label}"
            )
        if generate is not Family.GUESS:
            return "masking trains a Guess generation kernel: generate x[t-1] ~ Guess(x[t], net)"
        return None
    if kind is ObjectiveKind.ELBO:
        if facts["role"] != "data":
            return "elbo trains on data, but this model declares no data"
        return None
    if kind in (
        ObjectiveKind.TRAJECTORY_BALANCE,
        ObjectiveKind.VARGRAD,
        ObjectiveKind.SUBTB,
        ObjectiveKind.DETAILED_BALANCE,
    ):
        if not facts["reward"]:
            return f"{kind.value} trains a sampler toward a reward, but the model has no reward"
        return None
    # Fine-tuning objectives.
    if not facts["parent"]:
        return f"{kind.value} fine-tunes a trained model: declare 'model NAME extends PARENT'"
    if not facts["reward"]:
        return f"{kind.value} fine-tunes toward a reward, but the model has no reward"
    return None


def fitting_objectives(facts: dict[str, Any]) -> list[str]:
    """The names of every objective that fits."""
    return [k.value for k in ObjectiveKind if misfit(k, facts) is None]


def continuous_weights(keep: sp.Expr, steps: int) -> np.ndarray | None:
    """MDLM's ``−α'(t)/(1 − α(t))`` at ``t = 0..T`` (float64, entry 0 ``nan``), with
    α(t) = g(t)/g(0) for ``keep = g(t)/g(t-1)``; ``None`` when ``keep`` does not telescope."""
    g = symbolic.telescoping_ratio(keep)
    if g is None:
        return None
    t = symbolic.T_SYMBOL
    alpha = g / g.subs(t, 0)
    return symbolic.table(sp.simplify(-sp.diff(alpha, t) / (1 - alpha)), steps, start=1)


def masking_problem(
    options: dict[str, Any], destroy: Channel, start: Channel, steps: int
) -> tuple[str, str | None, np.ndarray | None]:
    """Whether ``objective masking`` has an ELBO for these kernels, decided once, in the checker.

    :returns: ``(problem, hint, weights)``: ``problem`` is ``""`` when it fits; ``weights`` is
        the continuous-time weight table for ``time = continuous`` (else ``None``).
    """
    masked_start = start.family is Family.SINGLETON and start.params.get("value") == "masked"
    if str(options.get("loss", "elbo")) == "epsilon_hybrid" and "redraw" not in destroy.tables:
        what = "it has no masked tokens" if destroy.family is Family.SHUFFLE else "it redraws none"
        return (
            "loss = epsilon_hybrid weights the masked and redrawn tokens of a hybrid Mask "
            f"(redraw = …), and this destruction is {destroy.family.label}: {what}",
            "add redraw = … to the Mask, or remove the option",
            None,
        )
    if destroy.family in (Family.MASK, Family.MASH_LAST, Family.MASH_RANDOM) and not masked_start:
        return (
            f"{destroy.family.label} destruction ends all-masked, so generation must start there",
            "write: generate x[T] = masked",
            None,
        )
    if destroy.family is Family.SHUFFLE and start.family is not Family.CATEGORICAL:
        return "Shuffle destruction needs a Categorical generation start", None, None
    if options.get("time") != "continuous":
        return "", None, None
    if destroy.family is not Family.MASK:
        return (
            f"time = continuous is MDLM's weighting of Mask destruction, and this destruction "
            f"is {destroy.family.label}",
            "remove the option (discrete time is exact for any T)",
            None,
        )
    if "redraw" in destroy.tables:
        return (
            "time = continuous is MDLM's weighting of absorbing destruction, and this Mask also "
            "redraws tokens uniformly",
            "remove the option: the hybrid's discrete-time ELBO is exact",
            None,
        )
    if destroy.tables["keep"].ndim > 1:
        return (
            "time = continuous is MDLM's weighting of one schedule shared by every position, and "
            "this keep depends on the position i",
            "remove the option: the discrete-time weights are exact per (level, position)",
            None,
        )
    weights = continuous_weights(destroy.params["keep"], steps)
    if weights is None:
        return (
            "time = continuous needs the keep probability written as g(t)/g(t-1) "
            "(then α(t) = g(t)/g(0) is differentiable in t), and this keep is not",
            "write keep = alpha(t) / alpha(t-1) with a schedule alpha, or use time = discrete",
            None,
        )
    bad = [t for t in range(1, steps + 1) if not np.isfinite(weights[t])]
    if bad:
        return f"the weight −α'(t)/(1 − α(t)) is not finite at level t = {bad[0]}", None, None
    return "", None, weights


def scoring_problem(
    options: dict[str, Any], destroy: Channel, generate: Channel
) -> tuple[str, str, str]:
    """Why a fine-tuning objective's order-free ``scoring`` does not fit: ``(problem, the
    option to point at, a hint)``, ``problem`` ``""`` when it fits."""
    scoring = options.get("scoring")
    if scoring is not None and str(scoring) != "trajectory":
        hint = "or use scoring = trajectory"
        if destroy.family is not Family.MASK or "redraw" in destroy.tables:
            what = "a hybrid Mask" if "redraw" in destroy.tables else destroy.family.label
            problem = (
                f"scoring = {scoring} scores a masked-diffusion sample without its order, so it "
                f"needs Mask destruction, and this destruction is {what}"
            )
            return problem, "scoring", hint
        if generate.family is not Family.GUESS:
            problem = f"scoring = {scoring} reads the Guess net's x̂[0]: generate x[t-1] ~ Guess(…)"
            return problem, "scoring", hint
    return "", "", ""

"""Which objectives fit which kernels, and the options each objective and ``train`` accept.

The fit rules follow DESIGN.md §1: ``denoising`` needs fixed linear-Gaussian destruction and a
``Guess``; ``masking`` needs ``Mask``/``MashLast``/``Shuffle`` destruction of tokens; ``elbo``
takes any data model; the trajectory-balance family needs a reward; the fine-tuning objectives
need a reward and a parent model (``extends``).
"""

from __future__ import annotations

from typing import Any

from ..ir import Family, ObjectiveKind
from ..ir.options import OBJECTIVE_OPTIONS, TRAIN_OPTIONS, OptionSpec

__all__ = ["OptionSpec", "OBJECTIVE_OPTIONS", "TRAIN_OPTIONS", "misfit", "fitting_objectives"]


def misfit(kind: ObjectiveKind, facts: dict[str, Any]) -> str | None:
    """Why ``kind`` does not fit a model, or ``None`` when it fits.

    :param facts: ``role`` (data/target), ``destroy``/``generate``/``start`` families,
        ``learned_destroy``, ``reward`` (bool), ``parent`` (bool), ``space_kind``.
    """
    destroy, generate = facts["destroy"], facts["generate"]
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
        if destroy not in (Family.MASK, Family.MASH_LAST, Family.SHUFFLE):
            return (
                "masking needs a Mask, MashLast or Shuffle destruction of tokens, "
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

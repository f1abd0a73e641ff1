"""Training objectives, one module each, written against the channel protocol.

:func:`build_objective` picks the module for the model's declared objective.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from ..errors import DtgRuntimeError
from ..ir import ObjectiveKind
from .balance import Balance
from .denoising import Denoising
from .finetune import PolicyGradient, RelativeTB
from .masking import Masking

__all__ = ["build_objective"]


def build_objective(model: Any) -> nn.Module:
    """The objective module of a compiled model (it may own parameters such as log Z)."""
    kind = model.ir.objective.kind
    options = model.ir.objective.options
    if kind is ObjectiveKind.DENOISING:
        return Denoising(model.destroy, model.generate, model.start, options)
    if kind is ObjectiveKind.MASKING:
        return Masking(model, options)
    if kind is ObjectiveKind.ELBO:
        from .elbo import Elbo  # heavy: imports pyro, needed by ELBO models only

        return Elbo(model, options)
    if kind in (
        ObjectiveKind.TRAJECTORY_BALANCE,
        ObjectiveKind.VARGRAD,
        ObjectiveKind.SUBTB,
        ObjectiveKind.DETAILED_BALANCE,
    ):
        return Balance(model, kind, options)
    if kind is ObjectiveKind.RELATIVE_TRAJECTORY_BALANCE:
        return RelativeTB(model, options)
    if kind is ObjectiveKind.POLICY_GRADIENT:
        return PolicyGradient(model, options)
    raise DtgRuntimeError(f"objective {kind.value} cannot be compiled yet")

"""Training objectives, one module each, written against the channel protocol.

:func:`build_objective` picks the module for the model's declared objective.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from ..errors import DtgRuntimeError
from ..ir import ObjectiveKind

__all__ = ["build_objective"]


def build_objective(model: Any) -> nn.Module:
    """The objective module of a compiled model (it may own parameters such as log Z)."""
    kind = model.ir.objective.kind
    options = model.ir.objective.options
    if kind is ObjectiveKind.DENOISING:
        from .denoising import Denoising

        return Denoising(model.destroy, model.generate, model.start, options)
    if kind is ObjectiveKind.MASKING:
        from .masking import Masking

        return Masking(model, options)
    if kind is ObjectiveKind.ELBO:
        from .elbo import Elbo

        return Elbo(model, options)
    if kind in (
        ObjectiveKind.TRAJECTORY_BALANCE,
        ObjectiveKind.VARGRAD,
        ObjectiveKind.SUBTB,
        ObjectiveKind.DETAILED_BALANCE,
    ):
        from .balance import Balance

        return Balance(model, kind, options)
    if kind is ObjectiveKind.RELATIVE_TRAJECTORY_BALANCE:
        from .finetune import RelativeTB

        return RelativeTB(model, options)
    if kind is ObjectiveKind.POLICY_GRADIENT:
        from .finetune import PolicyGradient

        return PolicyGradient(model, options)
    raise DtgRuntimeError(f"objective {kind.value} cannot be compiled yet")

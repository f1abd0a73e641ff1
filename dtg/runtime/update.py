"""The optimiser update of a training step: gradient scaling for fp16, the gradient norm and its
clip, and the optimiser's step.

With ``precision = fp16`` the loss is scaled before ``backward`` (``torch.amp.GradScaler``), the
gradients are unscaled before the norm is taken and clipped, and a step whose gradients overflowed
is skipped while the scale halves; its gradient norm is reported as 0, since an overflow is the
scaler's business, not an error. A gradient that is non-finite whatever the scale (an infinity
made in float32 code outside the nets) would halve the scale for ever: when the scale falls below
2⁻²⁴ the run stops with an error, checked at the metrics lines (reading the scale is a sync).

References:
    Micikevicius et al. Mixed Precision Training (2018), loss scaling.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..errors import DtgRuntimeError
from ..ir.options import Precision
from ..sync_check import HostSyncCheck

__all__ = ["Update", "grad_norm"]

#: Below this scale the gradients overflow fp16 at every scale: not an overflow but an error.
SMALLEST_SCALE = 2.0**-24


def grad_norm(params: list[Tensor], clip: float) -> Tensor:
    """The global gradient norm (a 0-d tensor on the parameters' device); clips the gradients to
    ``clip`` when positive."""
    if clip > 0:
        return torch.nn.utils.clip_grad_norm_(params, clip)
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros((), device=params[0].device if params else None)
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))


class Update:
    """Backward, norm and step of one training step (module docstring).

    :param optimizer: the run's optimiser. :param clip: the gradient-norm clip (0: none).
    :param precision: the run's ``precision``. :param device: where the nets run.
    :param syncs: the run's ``--sync-check`` (the scaler's reads are made on purpose).
    :param saved: the scaler's state from a checkpoint, or ``None``.
    :param check_every: steps between checks of the scale (the metrics lines).
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        clip: float,
        precision: Precision | str,
        device: torch.device,
        syncs: HostSyncCheck,
        saved: dict[str, Any] | None = None,
        check_every: int = 50,
    ) -> None:
        self.optimizer, self.clip, self.syncs, self.check_every = (
            optimizer,
            clip,
            syncs,
            check_every,
        )
        self.params = [p for group in optimizer.param_groups for p in group["params"]]
        fp16 = Precision(precision) is Precision.FP16
        self.scaler = torch.amp.GradScaler(device.type) if fp16 else None
        if self.scaler is not None and saved:
            self.scaler.load_state_dict(saved)

    def backward(self, loss: Tensor) -> None:
        """``loss.backward()``, scaled for fp16."""
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def norm(self) -> Tensor:
        """Unscale (fp16), then the clipped global gradient norm; 0 for a skipped fp16 step."""
        if self.scaler is None:
            return grad_norm(self.params, self.clip)
        with self.syncs.allowed():  # the scaler's infinity check waits for the device
            self.scaler.unscale_(self.optimizer)
        norm = grad_norm(self.params, self.clip)
        return torch.where(norm.isfinite(), norm, torch.zeros_like(norm))

    def step(self, number: int) -> None:
        """The optimiser's step (skipped by the scaler after an overflow).

        :param number: the step being made (the scale is checked every ``check_every``).
        :raises DtgRuntimeError: when the fp16 scale has collapsed (module docstring).
        """
        if self.scaler is None:
            self.optimizer.step()
            return
        with self.syncs.allowed():
            self.scaler.step(self.optimizer)
        self.scaler.update()
        if number % self.check_every == 0 and self.scaler.get_scale() < SMALLEST_SCALE:
            raise DtgRuntimeError(
                f"training stopped at step {number}: with precision = fp16 the gradients "
                f"overflowed at every scale down to {self.scaler.get_scale():.3g}, so every "
                "recent step was skipped: they are not finite in float32 either",
                hints=["train with precision = fp32 to find where (the NaN/inf check names it)"],
            )

    def state(self) -> dict[str, Any] | None:
        """:returns: the scaler's state for the checkpoint (``None`` without fp16)."""
        return self.scaler.state_dict() if self.scaler is not None else None

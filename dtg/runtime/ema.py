"""An exponential moving average of a model's weights (train option ``ema``).

``dtg sample`` and ``dtg eval`` use the average instead of the raw weights when a checkpoint has
one (:func:`dtg.runtime.checkpoint.effective_state`).
"""

from __future__ import annotations

import torch

__all__ = ["EMA"]


class EMA:
    """An exponential moving average of a model's parameters: ``e ← d·e + (1 − d)·p``.

    :param model: the module whose parameters are tracked (by name).
    :param decay: ``d`` in ``(0, 1]``.
    """

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        self.decay = decay
        self.names = [n for n, p in model.named_parameters() if p.requires_grad]
        params = dict(model.named_parameters())
        self.shadow = {n: params[n].detach().clone() for n in self.names}

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        """Move the average one step towards ``model``'s current parameters."""
        params = dict(model.named_parameters())
        current = [params[n].detach() for n in self.names]
        torch._foreach_lerp_(list(self.shadow.values()), current, 1.0 - self.decay)

    def load(self, state: dict[str, torch.Tensor]) -> None:
        """Copy a saved average in (names this model does not track are ignored).

        :param state: the ``ema`` entry of a checkpoint.
        """
        for name, value in state.items():
            if name in self.shadow:
                self.shadow[name].copy_(value)

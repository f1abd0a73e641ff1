"""How the nets execute during training: mixed precision and ``torch.compile`` (train options
``precision`` and ``compile``).

Only the nets change. While :class:`TrainingNets` is entered each net of the model runs under
``torch.autocast`` (bf16 or fp16: matrix products and convolutions in half precision, autocast's
own float32 list kept) and hands back **float32**; everything around the nets — the schedule
tables (float32 buffers, float64 where the IR computed them), Gaussian and categorical
log-densities, KL terms, the losses' sums over levels and positions, log Z and the trajectory
balance residuals — stays float32 because it is computed outside them. Half-precision outputs
would round a ``log_softmax`` or a noise residual to 8 (bf16) or 11 (fp16) mantissa bits; cast at
the net's boundary they keep the nets' speed without losing the objective's accuracy.

fp16 has a narrow exponent range, so its gradients are scaled (:mod:`dtg.runtime.update`,
``torch.amp.GradScaler``): the scaler checks the gradients for infinities every step, which waits
for the device — a host sync by design (``dtg train --sync-check`` accepts it only for fp16).
Only the model's own nets (``model.nets``) change: a fine-tuning prior's frozen copy or a Polyak
target copy runs in float32.

``compile = true`` replaces each net's ``forward`` with ``torch.compile`` of it (the per-level
Python loops of the objectives stay eager: their level counts and shapes change per call, which
would recompile). A net that fails to compile falls back to eager with one warning; its first
compiled call also compiles the backward graph (which AOTAutograd otherwise compiles lazily, in
``loss.backward()``, outside the fallback).
Between steps (held-out evaluations, checkpoints) and after training the nets' own ``forward``
methods are back: evaluation and sampling run in float32, eagerly.

References:
    Micikevicius et al. Mixed Precision Training (2018), loss scaling.
    PyTorch: Automatic Mixed Precision (``torch.amp``); ``torch.compile``.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

import torch
import torch._functorch.config as functorch_config
from torch import nn

from ..ir.options import Precision

__all__ = ["TrainingNets", "half_dtype"]


def half_dtype(precision: Precision | str) -> torch.dtype | None:
    """:returns: the autocast dtype of ``precision`` (``None`` for fp32)."""
    return {Precision.BF16: torch.bfloat16, Precision.FP16: torch.float16}.get(Precision(precision))


_MISSING = object()


def _as_float32(value: Any) -> Any:
    """Half-precision tensors (also inside tuples, lists and dicts) back to float32."""
    if isinstance(value, torch.Tensor):
        return value.float() if value.dtype in (torch.float16, torch.bfloat16) else value
    if isinstance(value, tuple | list):
        return type(value)(_as_float32(v) for v in value)
    if isinstance(value, dict):
        return {k: _as_float32(v) for k, v in value.items()}
    return value


def _autocast(forward: Callable, device_type: str, dtype: torch.dtype) -> Callable:
    @functools.wraps(forward)
    def run(*args: Any, **kwargs: Any) -> Any:
        with torch.autocast(device_type, dtype=dtype):
            out = forward(*args, **kwargs)
        return _as_float32(out)

    return run


def _compiled(forward: Callable, name: str) -> Callable:
    """``torch.compile(forward)``, falling back to ``forward`` when compiling fails."""
    compiled = torch.compile(forward, dynamic=None)
    state = {"eager": False, "warm": False}

    @functools.wraps(forward)
    def run(*args: Any, **kwargs: Any) -> Any:
        if state["eager"]:
            return forward(*args, **kwargs)
        try:
            if state.get("warm"):
                return compiled(*args, **kwargs)
            # the first call compiles the backward too, inside this fallback
            with functorch_config.patch(force_non_lazy_backward_lowering=True):
                out = compiled(*args, **kwargs)
            state["warm"] = True
            return out
        except torch._dynamo.exc.TorchDynamoException as error:  # not the model's own errors
            state["eager"] = True
            message = str(error).strip().splitlines()[0] if str(error).strip() else ""
            print(
                f"dtg: compile = true: net '{name}' runs eagerly, torch.compile failed "
                f"({type(error).__name__}: {message[:200]})",
                file=sys.stderr,
            )
            return forward(*args, **kwargs)

    return run


class TrainingNets:
    """The nets' training-time forwards, installed while the object is entered (each step:
    held-out evaluations and checkpoints between steps see the nets' own float32 forwards).

    :param model: a compiled model (its ``nets`` ModuleDict; a model without nets is unchanged).
    :param precision: fp32, bf16 or fp16. :param compile: wrap each net in ``torch.compile``.
    :param device: where the nets run (autocast's device type).
    """

    def __init__(
        self, model: nn.Module, precision: Precision | str, compile: bool, device: torch.device
    ) -> None:
        nets = getattr(model, "nets", None)
        dtype = half_dtype(precision)
        self.forwards: list[tuple[nn.Module, Callable]] = []
        if nets is None or (dtype is None and not compile):
            return
        for name, net in nets.items():
            forward = net.forward
            if compile:
                forward = _compiled(forward, name)
            if dtype is not None:
                forward = _autocast(forward, device.type, dtype)
            self.forwards.append((net, forward))

    def __enter__(self) -> TrainingNets:
        self.before = [net.__dict__.get("forward", _MISSING) for net, _ in self.forwards]
        for net, forward in self.forwards:
            net.forward = forward  # an instance attribute: not in the state dict
        return self

    def __exit__(self, *exc: object) -> None:
        for (net, _), before in zip(self.forwards, self.before, strict=True):
            if before is _MISSING:  # the class's forward again
                net.__dict__.pop("forward", None)
            else:  # a forward the net held as its own (e.g. an OptimizedModule's)
                net.forward = before

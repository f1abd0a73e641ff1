"""Which torch device ``--device`` / ``compile(device=…)`` means."""

from __future__ import annotations

import torch

from ..errors import DtgRuntimeError

__all__ = ["resolve_device"]


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """The device for ``--device``: ``auto`` is CUDA when available, else the CPU.

    :raises DtgRuntimeError: ``cuda`` on a machine without CUDA, or an unknown device name.
    """
    if isinstance(name, torch.device):
        return name
    name = (name or "auto").lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DtgRuntimeError(
            "CUDA is not available on this machine (torch "
            f"{torch.__version__}, {'a CPU-only build' if torch.version.cuda is None else 'no GPU'})",
            hints=["use --device cpu, or --device auto to pick CUDA only when it is there"],
        )
    try:
        return torch.device(name)
    except RuntimeError:
        raise DtgRuntimeError(f"unknown device '{name}'", hints=["use auto, cpu or cuda"]) from None

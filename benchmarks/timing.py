"""Helpers shared by the step-time benchmarks: devices, precision contexts, interleaved timing.

The overhead benchmarks (``overhead_denoising.py``, ``overhead_masking.py``, the ``speed`` part of
``samplers.py``) and the GPU check (``gpu_check.py``, ``gpu_timings.py``) time a dtg training step
against the same step written by hand. On CUDA the device is synchronised around every timed
region (kernel launches are asynchronous); with ``precision = bf16`` the hand-written step runs
under ``torch.autocast`` and dtg's step under what its training loop uses for the train option
``precision = "bf16"`` (:func:`dtg_precision`).
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

PRECISIONS = ("fp32", "bf16")
#: How dtg's bf16 step is made when the training loop's helper is not there yet.
FALLBACK_NOTE = "autocast wrapper in the benchmark (train option not yet available)"


def resolve_device(name: str) -> torch.device:
    """:returns: ``torch.device(name)``, checked to exist.

    :raises SystemExit: with a message when CUDA is asked for and not available.
    """
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise SystemExit(f"--device {name!r} is not a device: {error}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--device {name}: CUDA is not available (torch {torch.__version__})")
    return device


def synchronize(device: torch.device | str) -> None:
    """Wait for the device's queued work (a no-op on the CPU)."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def hand_precision(device: torch.device, precision: str) -> Callable[[], Any]:
    """:returns: a factory of the context the hand-written step runs under (autocast for bf16)."""
    if precision == "fp32":
        return contextlib.nullcontext
    return lambda: torch.autocast(device.type, dtype=torch.bfloat16)


def dtg_precision(model: Any, device: torch.device, precision: str) -> tuple[Callable, str]:
    """The context dtg's step runs under for ``precision``: the training loop's own
    (``dtg.runtime.net_execution.TrainingNets``, the nets under autocast with float32 outputs)
    when this dtg has it, else ``torch.autocast`` around the whole loss.

    :returns: ``(factory of the context, a note saying which one it is)``.
    """
    if precision == "fp32":
        return contextlib.nullcontext, "fp32"
    try:
        from dtg.runtime.net_execution import TrainingNets
    except ImportError:
        return hand_precision(device, precision), FALLBACK_NOTE
    nets = TrainingNets(model, precision, False, device)
    return (lambda: nets), "dtg.runtime.net_execution.TrainingNets (the training loop's)"


def interleaved(
    steps: dict[str, Callable[[], Any]], repeats: int, warmup: int, device: torch.device | str
) -> dict[str, list[float]]:
    """Run the steps in turn (the order alternating each round), each timed alone.

    :param steps: name → a step with no arguments.
    :param repeats: timed rounds. :param warmup: untimed rounds first.
    :returns: name → seconds per timed round.
    """
    names = list(steps)
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(warmup + repeats):
        for name in names if round_ % 2 == 0 else names[::-1]:
            synchronize(device)
            start = time.perf_counter()
            steps[name]()
            synchronize(device)
            if round_ >= warmup:
                times[name].append(time.perf_counter() - start)
    return times


def summary(times: dict[str, list[float]], first: str = "dtg", second: str = "hand") -> dict:
    """:returns: median milliseconds of both and the median per-round ratio ``first/second``."""
    ratios = [a / b for a, b in zip(times[first], times[second], strict=True)]
    return {
        f"{first}_ms": round(1e3 * statistics.median(times[first]), 4),
        f"{second}_ms": round(1e3 * statistics.median(times[second]), 4),
        "ratio_median": round(statistics.median(ratios), 4),
        "repeats": len(ratios),
    }

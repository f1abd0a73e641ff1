"""Code that runs after every training step: ``train(…, on_step=…)`` and plug-ins.

After each optimizer step, before the step's metrics line and checkpoint, the loop calls every
callback with a :class:`StepEvent`. A callback may read it (log to a tracker, watch a quantity)
or raise to stop training: the exception leaves :func:`dtg.runtime.train.train` after the loop has
closed its files, and the checkpoint on disk is the last one written before that step.

Callbacks come from two places: the ``on_step`` argument of :func:`~dtg.runtime.train.train`
(that run only), and :func:`add_step_callback` (every run of this process). A plug-in file
(``dtg train … --plugin FILE.py``) calls the latter to reach a command-line run, on every rank of
a ``--nproc`` job (each process loads the plug-in).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from torch import Tensor

__all__ = [
    "StepEvent",
    "StepCallback",
    "add_step_callback",
    "remove_step_callback",
    "step_callbacks",
]


@dataclass(frozen=True)
class StepEvent:
    """One finished optimizer step.

    :param step: the steps done, this one included (it continues across resumes).
    :param total: the step the run stops at.
    :param loss: the step's loss, detached (reading it with ``float`` waits for the device).
    :param rank: this process's rank in a distributed job (0 alone).
    :param world: the number of processes (1 alone).
    :param out: the run folder.
    """

    step: int
    total: int
    loss: Tensor
    rank: int
    world: int
    out: Path


StepCallback = Callable[[StepEvent], None]

_REGISTERED: list[StepCallback] = []


def add_step_callback(callback: StepCallback) -> Callable[[], None]:
    """Call ``callback`` after every step of every later training run in this process.

    :param callback: takes a :class:`StepEvent`; what it returns is ignored.
    :returns: a function that removes it again.
    :raises TypeError: when ``callback`` is not callable.
    """
    if not callable(callback):
        raise TypeError(f"a step callback must be callable, got {type(callback).__name__}")
    _REGISTERED.append(callback)
    return lambda: remove_step_callback(callback)


def remove_step_callback(callback: StepCallback) -> None:
    """Forget a callback of :func:`add_step_callback` (no error when it is not registered)."""
    if callback in _REGISTERED:
        _REGISTERED.remove(callback)


def step_callbacks(extra: StepCallback | Iterable[StepCallback] | None) -> list[StepCallback]:
    """The callbacks of one run: the registered ones, then ``extra`` (one or several).

    :raises TypeError: when something in ``extra`` is not callable.
    """
    if extra is None:
        chosen: list[StepCallback] = []
    elif callable(extra):
        chosen = [extra]
    else:
        chosen = list(extra)
    for callback in chosen:
        if not callable(callback):
            raise TypeError(f"on_step takes callables, got {type(callback).__name__}")
    return [*_REGISTERED, *chosen]

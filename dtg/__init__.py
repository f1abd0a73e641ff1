"""dtg: a probabilistic-programming language for destroy-then-generate models.

Write how information is withheld from data (a destruction chain) and how a model guesses it
back (a generation chain); dtg checks the file, compiles it to PyTorch objectives and Pyro
programs, trains and samples it, and draws it as a generative commutative diagram.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__
from .errors import (
    DtgCheckError,
    DtgDataError,
    DtgError,
    DtgLevelError,
    DtgNameError,
    DtgObjectiveError,
    DtgRangeError,
    DtgRuntimeError,
    DtgSyntaxError,
    DtgTypeError,
)
from .plugins import load_plugin, register_reward
from .program import Program, load, loads

if TYPE_CHECKING:  # for the annotation only: importing the runtime would import torch
    from .runtime.train import Run


def train(model: Any, **options: Any) -> Run:
    """Train a compiled model (``dtg.runtime.train.train``): progress, checkpoints, metrics.

    :param model: ``dtg.load(path).compile()``.
    :param options: ``steps``, ``batch``, ``lr``, ``out``, ``seed``, ``resume``, ``overrides``…
    :returns: a :class:`dtg.runtime.train.Run`.
    """
    from .runtime.train import train as _train  # torch is heavy: imported when training starts

    return _train(model, **options)


__all__ = [
    "__version__",
    "load",
    "loads",
    "train",
    "register_reward",
    "load_plugin",
    "Program",
    "DtgError",
    "DtgSyntaxError",
    "DtgCheckError",
    "DtgNameError",
    "DtgTypeError",
    "DtgLevelError",
    "DtgRangeError",
    "DtgObjectiveError",
    "DtgDataError",
    "DtgRuntimeError",
]

"""Training, in one import: ``from dtg.runtime.train import train, Run, …``.

The pieces live in modules of their own; this one gathers the names callers use:

* :mod:`dtg.runtime.loop`: :func:`train` (the loop) and :class:`Run` (its outcome);
* :mod:`dtg.runtime.train_options`: :func:`coerce_option`, :class:`OptionError`;
* :mod:`dtg.runtime.monitor`: NaN checks, ``metrics.jsonl`` (:data:`METRICS`), progress;
* :mod:`dtg.interrupt`: Ctrl-C and SIGTERM, :class:`Interrupted`;
* :mod:`dtg.runtime.step_callbacks`: code run after every step (``on_step``, plug-ins);
* :mod:`dtg.runtime.checkpoint` (:data:`CHECKPOINT`, :func:`seed_everything`),
  :mod:`dtg.runtime.ema`, :mod:`dtg.runtime.device`.
"""

from __future__ import annotations

from ..interrupt import Interrupted
from .checkpoint import CHECKPOINT, seed_everything
from .device import resolve_device
from .ema import EMA
from .loop import DATA_SPLIT_SEED, Run, train
from .monitor import METRICS
from .step_callbacks import StepEvent, add_step_callback, remove_step_callback
from .train_options import OptionError, coerce_option

__all__ = ["train", "Run", "EMA", "resolve_device", "seed_everything", "coerce_option"]
__all__ += ["OptionError", "CHECKPOINT", "METRICS", "DATA_SPLIT_SEED", "Interrupted"]
__all__ += ["StepEvent", "add_step_callback", "remove_step_callback"]

"""What a training run reports: NaN/inf checks, ``metrics.jsonl`` lines and the progress display.

:class:`Monitor` receives each step's loss and gradient norm from the loop. It checks them for
NaN or infinity — at once on the CPU, where a check is free, or in batches on a GPU, where each
check waits for the device — and stops the run with a :class:`~dtg.errors.DtgRuntimeError` that
names the step, the first non-finite value the model's ``diagnose_nan`` finds, and the last good
checkpoint. Every ``log_every`` steps it appends one JSON line to ``OUT/metrics.jsonl`` (mean loss
since the last line, learning rate, time, steps per second, the model's own metrics) and shows
progress: a tqdm bar on a terminal, else the same figures as a line on stderr.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm as terminal_tqdm
from tqdm.auto import tqdm as auto_tqdm

from ..atomic import open_append, write_atomic
from ..errors import DtgRuntimeError
from .checkpoint import CHECKPOINT
from .diagnose import first_non_finite_gradient, largest_gradient

__all__ = ["Monitor", "METRICS", "checks_every_step"]

#: The metrics file's name in a run folder: one JSON object per line.
METRICS = "metrics.jsonl"
#: Examples replayed with gradients, one backward pass per level (a slice keeps this short).
GRADIENT_REPLAY = 16


def checks_every_step(device: torch.device) -> bool:
    """On the CPU a check is free; on a GPU each one is a sync, so they wait for a log line."""
    return device.type == "cpu"


class Monitor:
    """Loss bookkeeping for the training loop (see the module docstring).

    :param model: the compiled model (``metrics``, ``diagnose_nan``).
    :param opts: the run's options (``steps``, ``log_every``).
    :param out: the folder of ``metrics.jsonl``.
    :param step: the step the run starts from; ``elapsed``: its training seconds so far.
    :param progress: show progress at all; ``resumed``: keep the metrics lines up to ``step``.
    :param sync_every: check the pending losses after this many steps (1: every step).
    """

    def __init__(
        self,
        model: Any,
        opts: dict[str, Any],
        out: Path,
        step: int,
        elapsed: float,
        progress: bool,
        resumed: bool,
        sync_every: int,
        board: Any = None,
    ) -> None:
        self.model, self.opts, self.total = model, opts, int(opts["steps"])
        self.path, self.checkpoint = out / METRICS, out / CHECKPOINT
        self.good = step if resumed else 0
        self.elapsed0, self.t0 = elapsed, time.perf_counter()
        self.window_step, self.window_time = step, self.t0
        self.sync_every = sync_every
        self.losses: list[float] = []
        self.pending: list[tuple[int, torch.Tensor, torch.Tensor, Any]] = []
        # a bar on a terminal, a widget in a notebook (tqdm.auto); else lines
        self.progress, self.tty = progress, progress and (sys.stderr.isatty() or _in_notebook())
        resuming = resumed and self.path.exists()
        lines = self.path.read_text(encoding="utf-8").splitlines() if resuming else []
        # keep the lines up to the checkpoint (a run that died later wrote more)
        kept = [x for x in lines if _line_step(x) <= step]
        write_atomic(self.path, "".join(x + "\n" for x in kept))
        self.log = open_append(self.path)
        self.board = board  # a dtg.runtime.tensorboard.Board, or None
        self.bar = _bar_class()(
            total=self.total,
            initial=step,
            disable=not self.tty,
            unit="step",
            file=sys.stderr,
            dynamic_ncols=True,
        )

    def elapsed(self) -> float:
        """:returns: the run's training seconds, earlier runs of a resumed run included."""
        return self.elapsed0 + time.perf_counter() - self.t0

    def check(self, step: int, what: str, value: torch.Tensor | float, data: Any) -> float:
        """:returns: ``value`` as a float.

        :raises DtgRuntimeError: when ``value`` is NaN or infinite, naming ``step``, where the
            first non-finite value comes from (a channel at a level, or a parameter), the last
            good checkpoint and what to try.
        """
        number = float(value.detach() if isinstance(value, torch.Tensor) else value)
        if math.isfinite(number):
            return number
        hints = self.diagnose(what, data)
        good = f"{self.checkpoint} (step {self.good})" if self.good else "none was written"
        hints += [f"the last good checkpoint: {good}", self.advice()]
        raise DtgRuntimeError(
            f"training stopped at step {step}: the {what} became {number}", hints=hints
        )

    def diagnose(self, what: str, data: Any) -> list[str]:
        """Where the non-finite ``what`` ("loss" or "gradient norm") of the batch ``data``
        comes from: the model's ``diagnose_nan`` replay, then for a gradient the replay with
        gradients (:mod:`dtg.runtime.diagnose`).

        :returns: the hints that say so (none when nothing is found).
        """
        diagnose = getattr(self.model, "diagnose_nan", None)
        if data is None or diagnose is None:
            return []
        gradient = what == "gradient norm" and hasattr(self.model, "ir")
        try:
            found = diagnose(data)
            if found is None and gradient:
                found = first_non_finite_gradient(self.model, data, GRADIENT_REPLAY)
            if found is None and gradient:
                largest = largest_gradient(self.model, data, GRADIENT_REPLAY)
                finite = "every gradient of a replay is finite; the largest: "
                return [finite + largest] if largest is not None else []
        except Exception as error:  # a diagnosis must never hide the real error
            found = f"(diagnosis failed: {type(error).__name__}: {error})"
        return [f"first non-finite value: {found}"] if found else []

    def advice(self) -> str:
        """What to try; ``grad_clip`` only when it is off (it is 1 by default)."""
        clip = float(self.opts.get("grad_clip") or 0.0)
        if clip > 0:
            return (
                f"lower the learning rate (--lr) (gradients are already clipped to norm {clip:g}"
                " by grad_clip), or find the operation with --detect-anomaly (slow)"
            )
        return (
            "lower the learning rate (--lr), set grad_clip (--set grad_clip=1), or find the "
            "operation with --detect-anomaly (slow)"
        )

    def record(
        self, step: int, loss: torch.Tensor, norm: torch.Tensor, data: Any, lr: float
    ) -> None:
        """Keep a finished step's loss and gradient norm; check and log them when due."""
        self.bar.update(1)
        self.pending.append((step, loss.detach(), norm.detach(), data))
        logging = step % self.opts["log_every"] == 0 or step == self.total
        if len(self.pending) >= self.sync_every or logging:
            self.flush()
        if logging:
            self.write_line(step, data, lr)

    def flush(self) -> None:
        """Check and keep the pending losses (one device sync for all of them)."""
        if not self.pending:
            return
        values = torch.stack([torch.stack([p[1], p[2].to(p[1])]) for p in self.pending]).tolist()
        for (step, _, _, data), (loss, norm) in zip(self.pending, values, strict=True):
            self.check(step, "gradient norm", norm, data)
            self.losses.append(self.check(step, "loss", loss, data))
        self.pending.clear()
        if self.tty:
            self.bar.set_postfix(loss=f"{self.losses[-1]:.4f}", refresh=False)

    def write_line(self, step: int, data: Any, lr: float) -> None:
        """Append the metrics line of ``step`` (and print it when there is no bar)."""
        now = time.perf_counter()
        window = self.losses[-(step - self.window_step) :]
        line = {
            "step": step,
            "loss": sum(window) / len(window),
            "lr": lr,
            "time": round(self.elapsed(), 4),
            "steps_per_s": round((step - self.window_step) / max(now - self.window_time, 1e-9), 3),
            **{k: float(v) for k, v in self.model.metrics(data).items()},
        }
        self.log.write(json.dumps(line) + "\n")
        self.log.flush()
        if self.board is not None:
            self.board.scalars(step, line, "train")
        if self.progress and not self.tty:
            print(
                f"step {step}/{self.total}  loss {line['loss']:.4f}  lr {lr:.3g}  "
                f"{line['steps_per_s']:.1f} steps/s",
                file=sys.stderr,
                flush=True,
            )
        self.window_step, self.window_time = step, now

    def write_record(self, step: int, record: dict[str, Any], shadow: Any = None) -> None:
        """Append a line of other figures at ``step`` (held-out evaluations); ``shadow``, the
        EMA weights, draws the TensorBoard log's samples as the figures were scored."""
        self.log.write(json.dumps({"step": step, **record}) + "\n")
        self.log.flush()
        if self.board is not None:
            self.board.scalars(step, record, "heldout")
            self.board.samples(step, shadow)
        if self.progress and not self.tty:
            shown = "  ".join(f"{k} {v:.4g}" for k, v in record.items() if isinstance(v, float))
            print(f"step {step}/{self.total}  {shown}", file=sys.stderr, flush=True)
        elif self.tty:
            self.bar.write(f"step {step}: held-out {record.get('heldout_bits', math.nan):.4f} bits")

    def close(self) -> None:
        """Close the metrics file, the TensorBoard log and the progress bar."""
        self.log.close()
        if self.board is not None:
            self.board.close()
        self.bar.close()


def _bar_class() -> type:
    """tqdm.auto's bar (a widget in a notebook with ipywidgets), else the terminal bar: without
    ipywidgets tqdm's notebook bar fails ("IProgress not found") instead of falling back."""
    if _in_notebook():
        try:
            import ipywidgets  # noqa: F401  optional: the widget bar needs it
        except ImportError:
            return terminal_tqdm
    return auto_tqdm


def _in_notebook() -> bool:
    """Whether this process runs a Jupyter kernel (its bar is a widget, not a terminal line):
    an IPython kernel application is running, not merely importable or imported."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def _line_step(line: str) -> float:
    """The step of a ``metrics.jsonl`` line (infinite for a torn or foreign line: dropped)."""
    try:
        return float(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return math.inf

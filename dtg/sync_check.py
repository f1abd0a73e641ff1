"""``dtg train --sync-check``: the training step must not wait for the device.

A GPU runs ahead of Python only while nothing asks for a value: ``.item()``, ``float(t)``,
``bool(t)`` (an ``if`` on a tensor), ``.tolist()``, ``.cpu()``, ``.numpy()``, ``nonzero()`` and
indexing with a boolean mask each wait for every queued kernel. The loop keeps such reads to its
sync points — every ``log_every`` steps (the metrics line, the NaN checks), checkpoints and
held-out evaluations — and :class:`HostSyncCheck` proves it for the steps in between:

* on CUDA, the step runs under ``torch.cuda.set_sync_debug_mode("error")``, so the driver's own
  account of a synchronising call stops the run;
* on the CPU, where nothing waits, the same reads are counted by patching those tensor methods
  while the step runs, and any read is an error naming the line of dtg (or the user's plug-in)
  that made it. (Only reads made by Python code outside torch are seen: torch's own, such as
  the optimizer's step counters on the host, and reads inside C++ operators — ``unique``,
  ``repeat_interleave`` with tensor repeats — are not; the CUDA mode sees those.)

The first step of each ``train`` call is not checked: lazy initialisation reads once there (log
Z's first estimate, the iteration counter after a checkpoint is loaded). Syncs made on purpose
are let through: fp16's gradient scaler checks the gradients for infinities every step (its two
calls), and local search reads how many samples it kept once per round (every 100 steps;
:func:`expected_sync`).
"""

from __future__ import annotations

import contextlib
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from .errors import DtgRuntimeError

__all__ = ["HostSyncCheck", "count_host_syncs", "expected_sync", "SYNCING_METHODS"]

#: Tensor methods that read a value back to the host (patched on the CPU).
SYNCING_METHODS = (
    "item", "tolist", "cpu", "numpy", "nonzero",
    "__bool__", "__float__", "__int__", "__index__", "__format__", "__array__",
)  # fmt: skip
_TORCH = str(Path(torch.__file__).parent)
_HERE = str(Path(__file__))


def _caller(frames: list[traceback.FrameSummary] | None = None) -> str | None:
    """The frame that made the read, ``file:line in function``; ``None`` when torch made it
    itself (on the CPU its reads of host tensors, such as the optimizer's step counters, are
    not device reads: the CUDA mode judges torch's own).

    :param frames: a traceback's frames (innermost last); the current stack by default.
    """
    stack = list(frames) if frames is not None else traceback.extract_stack()[:-2]
    while stack and (stack[-1].filename == _HERE or "contextlib" in stack[-1].filename):
        stack.pop()
    if frames is not None:  # an exception raised inside torch: name the first frame outside it
        while stack and stack[-1].filename.startswith(_TORCH):
            stack.pop()
    if not stack or stack[-1].filename.startswith(_TORCH):
        return None
    return f"{stack[-1].filename}:{stack[-1].lineno} in {stack[-1].name}"


def _boolean_index(index: Any) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in items)


@contextlib.contextmanager
def count_host_syncs(found: list[str]) -> Iterator[None]:
    """Append ``"method at file:line"`` to ``found`` for each host read while the block runs
    (tensor methods of :data:`SYNCING_METHODS`, ``torch.nonzero`` and boolean-mask indexing).

    :param found: the list that collects the reads.
    """
    saved: dict[str, Callable] = {}

    def counting(name: str, method: Callable) -> Callable:
        def run(self: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
            where = _caller()
            if where is not None:
                found.append(f"{name} at {where}")
            return method(self, *args, **kwargs)

        return run

    def indexing(self: torch.Tensor, index: Any) -> Any:
        if _boolean_index(index) and (where := _caller()) is not None:
            found.append(f"boolean-mask indexing at {where}")
        return saved["__getitem__"](self, index)

    for name in (*SYNCING_METHODS, "__getitem__"):
        saved[name] = getattr(torch.Tensor, name)
    own = {name for name in saved if name in torch.Tensor.__dict__}  # the rest are inherited
    nonzero = torch.nonzero
    try:
        for name in SYNCING_METHODS:
            setattr(torch.Tensor, name, counting(name, saved[name]))
        torch.Tensor.__getitem__ = indexing
        torch.nonzero = counting("torch.nonzero", nonzero)
        yield
    finally:
        for name, method in saved.items():
            if name in own:
                setattr(torch.Tensor, name, method)
            else:  # inherited from the C base class: inherit it again
                delattr(torch.Tensor, name)
        torch.nonzero = nonzero


#: The check of the running training loop (``None`` outside one, or when it does not check).
_ACTIVE: list[HostSyncCheck] = []


def expected_sync() -> contextlib.AbstractContextManager:
    """A read made on purpose inside a step (e.g. local search, once per round): not an error
    under ``--sync-check``."""
    return _ACTIVE[-1].allowed() if _ACTIVE else contextlib.nullcontext()


class HostSyncCheck:
    """The training loop's ``--sync-check`` (module docstring); inactive unless ``enabled``.

    :param device: the run's device. :param enabled: check at all.
    """

    def __init__(self, device: torch.device, enabled: bool) -> None:
        self.device, self.enabled = device, enabled
        self.found: list[str] = []
        self.first: int | None = None

    @contextlib.contextmanager
    def step(self, number: int) -> Iterator[None]:
        """Check the block that makes step ``number`` (everything between two sync points).

        :raises DtgRuntimeError: naming the step and where it read a value from the device.
        """
        if self.first is None:
            self.first = number
        if not self.enabled or number == self.first:  # lazy initialisation reads once
            yield
            return
        _ACTIVE.append(self)
        try:
            with self._checked(number):
                yield
        finally:
            _ACTIVE.pop()

    @contextlib.contextmanager
    def _checked(self, number: int) -> Iterator[None]:
        if self.device.type == "cuda":
            before = torch.cuda.get_sync_debug_mode()
            torch.cuda.set_sync_debug_mode("error")
            try:
                yield
            except RuntimeError as error:
                if "synchroniz" not in str(error):
                    raise
                where = _caller(traceback.extract_tb(error.__traceback__))
                raise DtgRuntimeError(
                    f"--sync-check: step {number} waited for the device: {error}",
                    hints=[f"the call: {where or 'inside torch'}"],
                ) from error
            finally:
                torch.cuda.set_sync_debug_mode(before)
            return
        self.found.clear()
        with count_host_syncs(self.found):
            yield
        if self.found:
            shown = "; ".join(dict.fromkeys(self.found))  # each place once, in order
            hints = ["keep values on the device (torch.where, masks as weights) until the "
                     "metrics line"]  # fmt: skip
            if any("/pyro/" in f for f in self.found):
                hints.append("the elbo objective runs Pyro's ELBO estimators, which read the "
                             "loss every step (warn_if_nan, torch_item), and its lowering reads "
                             "whether a site's std has zeros: it syncs every step")  # fmt: skip
            raise DtgRuntimeError(
                f"--sync-check: step {number} read {len(self.found)} value(s) back from the "
                f"device between sync points: {shown}",
                hints=hints,
            )

    @contextlib.contextmanager
    def allowed(self) -> Iterator[None]:
        """A sync made on purpose inside the step (fp16's gradient scaler)."""
        if not self.enabled:
            yield
            return
        if self.device.type == "cuda":
            before = torch.cuda.get_sync_debug_mode()
            torch.cuda.set_sync_debug_mode("default")
            try:
                yield
            finally:
                torch.cuda.set_sync_debug_mode(before)
            return
        kept = len(self.found)
        try:
            yield
        finally:
            del self.found[kept:]

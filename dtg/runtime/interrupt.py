"""Ctrl-C during training: finish the step, save a checkpoint, then stop with :class:`Interrupted`.

The first SIGINT only sets a flag that the loop reads after each whole step: it writes a
checkpoint of that step and raises :class:`Interrupted` (a ``KeyboardInterrupt``), which the CLI
reports with the checkpoint's path. A second SIGINT stops at once. Ranks of a distributed job
keep Python's default handler: they must stop at the same step, and torchrun stops them all.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from types import FrameType

__all__ = ["Interrupted", "StopOnInterrupt"]


class Interrupted(KeyboardInterrupt):
    """Training stopped by Ctrl-C after a whole step, with a checkpoint of that step on disk.

    :param step: the last step done.
    :param checkpoint: where it was saved.
    """

    def __init__(self, step: int, checkpoint: Path) -> None:
        super().__init__(f"interrupted after step {step}")
        self.step, self.checkpoint = step, checkpoint


class StopOnInterrupt:
    """While open, the first Ctrl-C sets :attr:`requested`; the second raises at once.

    It handles SIGINT only in the main thread (Python delivers signals there) and only when
    ``enabled``; otherwise :attr:`requested` stays false and Ctrl-C behaves as usual.

    :param enabled: install the handler (false for the ranks of a distributed job).
    """

    def __init__(self, enabled: bool) -> None:
        self.requested = False
        self.previous = None
        if enabled and threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            signal.signal(signal.SIGINT, self.previous)
            raise KeyboardInterrupt
        self.requested = True
        print(
            "\ndtg: stopping after this step to save a checkpoint (Ctrl-C again to quit now)",
            file=sys.stderr,
        )

    def close(self) -> None:
        """Put the previous SIGINT handler back (idempotent)."""
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
            self.previous = None

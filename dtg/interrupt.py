"""Ctrl-C and SIGTERM during training: finish the step, save a checkpoint, then stop.

The first SIGINT (Ctrl-C) or SIGTERM (what SLURM, Kubernetes and ``timeout`` send before they
kill) only sets a flag that the loop reads after each whole step: it writes a checkpoint of that
step and raises :class:`Interrupted` (a ``KeyboardInterrupt``), which the CLI reports with the
checkpoint's path and exits ``128 + signal`` (130 for SIGINT, 143 for SIGTERM). A second signal
stops a single process at once. The ranks of a distributed job all set the flag and agree on the
step to stop at (see :mod:`dtg.runtime.loop`); a repeated signal does not stop a rank at once,
because torchrun forwards the signal it receives to ranks that the terminal signalled already, and
a rank leaving early would leave the others waiting in a collective (torchrun kills them after its
own grace period). This module imports nothing heavy, so the CLI uses it before torch is loaded.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from types import FrameType

__all__ = [
    "Interrupted",
    "Stopped",
    "StopOnInterrupt",
    "STOP_SIGNALS",
    "signal_name",
    "stop_now",
    "exit_status",
    "RECEIVED",
]

#: The signals that ask training to stop after the current step.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def signal_name(signum: int) -> str:
    """:returns: ``"SIGTERM"`` for 15 and so on (``"signal N"`` for an unknown number)."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class Stopped(KeyboardInterrupt):
    """Stopped by a signal with nothing saved (start-up, or a second signal).

    :param signum: the signal received (the exit status is ``128 + signum``).
    """

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(f"stopped by {signal_name(signum)}")
        self.signum = signum


#: Signals :func:`stop_now` received. The exception it raises can be swallowed when the signal
#: lands in a ``__del__`` or a weakref callback ("Exception ignored in …"); training then still
#: stops after its first step (see :class:`StopOnInterrupt`).
RECEIVED: list[int] = []


def stop_now(signum: int, frame: FrameType | None) -> None:
    """A handler for SIGINT/SIGTERM outside training (start-up): stop, without a traceback.

    :raises Stopped: always.
    """
    RECEIVED.append(signum)
    raise Stopped(signum)


def exit_status(stop: KeyboardInterrupt) -> int:
    """:returns: ``128 + signal``, as a shell reports a process ended by it (130 for Ctrl-C)."""
    return 128 + int(getattr(stop, "signum", signal.SIGINT))


class Interrupted(Stopped):
    """Training stopped by a signal after a whole step, with a checkpoint of that step on disk.

    :param step: the last step done.
    :param checkpoint: where it was saved.
    :param signum: the signal that asked to stop.
    """

    def __init__(self, step: int, checkpoint: Path, signum: int = signal.SIGINT) -> None:
        super().__init__(signum)
        self.args = (f"interrupted after step {step}",)
        self.step, self.checkpoint = step, checkpoint


class StopOnInterrupt:
    """While open, the first SIGINT or SIGTERM sets :attr:`requested` (to the signal's number).

    It handles the signals only in the main thread (Python delivers them there); elsewhere
    :attr:`requested` stays ``None`` and the signals behave as before.

    :param repeat_quits: a second signal raises :class:`Stopped` at once (false for the ranks of
        a distributed job, see the module docstring).
    :param announce: say on stderr that training will stop (rank 0 only, in a distributed job).
    """

    def __init__(self, repeat_quits: bool = True, announce: bool = True) -> None:
        self.requested: int | None = RECEIVED[0] if RECEIVED else None  # one lost at start-up
        RECEIVED.clear()
        self.repeat_quits, self.announce = repeat_quits, announce
        self.previous: dict[int, object] = {}
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                self.previous[signum] = signal.signal(signum, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested is not None:
            if self.repeat_quits:
                self.close()
                raise Stopped(signum)
            return
        self.requested = signum
        if not self.announce:
            return
        again = "Ctrl-C again to quit now" if signum == signal.SIGINT else "again to quit now"
        more = f"; {again}" if self.repeat_quits else ""
        print(
            f"\ndtg: {signal_name(signum)}: stopping after this step to save a checkpoint{more}",
            file=sys.stderr,
            flush=True,
        )

    def close(self) -> None:
        """Put the previous handlers back (idempotent)."""
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        self.previous = {}

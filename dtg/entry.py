"""The ``dtg`` command (and ``python -m dtg``): the CLI, with signals during start-up caught.

Importing the CLI takes about half a second (the parser, the checker, sympy); a Ctrl-C in that
time would otherwise print a Python traceback, and a SIGTERM would end the process without a
word. This module imports only :mod:`dtg.interrupt` (light) until :func:`main` runs, so the
whole start-up is inside its ``try``.
"""

from __future__ import annotations

import signal
import sys
import threading

from .interrupt import exit_status, signal_name, stop_now

__all__ = ["main"]


def main() -> int:
    """Run ``dtg`` with ``sys.argv``.

    :returns: the exit status (:mod:`dtg.cli`; ``128 + signal`` when stopped while starting).
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, stop_now)
        signal.signal(signal.SIGINT, stop_now)  # Python's own would not be remembered
    try:
        from .cli import main as run  # lazy: inside the try, so a signal while importing is caught
    except KeyboardInterrupt as stop:
        signum = getattr(stop, "signum", signal.SIGINT)
        said = "interrupted" if signum == signal.SIGINT else f"stopped by {signal_name(signum)}"
        print(f"dtg: {said}", file=sys.stderr)
        return exit_status(stop)
    return run()

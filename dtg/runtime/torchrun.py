"""``python -m dtg.runtime.torchrun ARGS``: torchrun, with its own failures said in one line.

``dtg train --nproc N`` runs this (see :func:`dtg.runtime.distributed.launch`). It is torchrun
(``torch.distributed.run``) itself; only how torchrun ends is reported differently: when it is
stopped by a signal (which it forwards to the ranks, rank 0 saving a checkpoint) it exits
``128 + signal`` with no traceback, and when a rank fails (the rank has printed its own message)
it exits with that rank's status and one line naming it, instead of torchrun's error report.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from torch.distributed.elastic.multiprocessing.api import SignalException
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
from torch.distributed.run import get_args_parser, run

__all__ = ["main"]


def main(argv: Sequence[str]) -> int:
    """Run torchrun with ``argv`` (its own options, then ``-m dtg …``).

    :param argv: torchrun's command line.
    :returns: 0, the first failed rank's exit status, or ``128 + signal`` when stopped by one.
    """
    try:
        run(get_args_parser().parse_args(list(argv)))
    except SignalException as stop:
        return 128 + int(stop.sigval)
    except ChildFailedError as failure:
        rank, first = failure.get_first_failure()
        print(f"dtg: rank {rank} of the job failed (exit status {first.exitcode})", file=sys.stderr)
        return first.exitcode if first.exitcode > 0 else 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

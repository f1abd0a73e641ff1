"""Train and evaluate a ``.dtg`` file from the command line, one torch thread: the step every
results-producing benchmark (``samplers_lp.py``, ``hyperschedules.py``, ``orders.py``) shares.

Each run is a fresh ``dtg train … --force`` into its own folder, then ``dtg eval --json`` of
the checkpoint it wrote — the commands a user would run, so the figures are the CLI's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["train_and_eval"]


def train_and_eval(source: Path, folder: Path, steps: int, seed: int = 0) -> tuple[float, dict]:
    """Train ``source`` for ``steps`` into ``folder`` and evaluate its checkpoint.

    :returns: ``(wall seconds of training, dtg eval's JSON metrics)``.
    :raises subprocess.CalledProcessError: when either command fails.
    """
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cli = [sys.executable, "-m", "dtg"]
    start = time.time()
    subprocess.run(
        [*cli, "train", str(source), "--seed", str(seed), "--steps", str(steps),
         "--out", str(folder), "--force", "--no-progress"],
        check=True, env=env,
    )  # fmt: skip
    wall = time.time() - start
    evaluated = subprocess.run(
        [*cli, "eval", str(source), "--checkpoint", str(folder / "checkpoint.pt"), "--json"],
        check=True, env=env, capture_output=True, text=True,
    )  # fmt: skip
    return wall, json.loads(evaluated.stdout)

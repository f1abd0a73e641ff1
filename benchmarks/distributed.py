"""Steps per second of `dtg train` on 1 vs 2 local processes (same global batch). Prints JSON.

On a 2-core CPU machine the two processes share the cores, so expect little or no speed-up;
on GPUs each process has its own device.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODEL = """
model bench {
  data x : real[2] ~ moons()
  steps T = 100
  schedule beta(t) = 1e-4 + (0.02 - 1e-4) * (t - 1) / (T - 1)
  net eps : (real[2], time) -> real[2] = mlp(hidden = [128, 128, 128])
  destroy  x[t]   ~ Normal(sqrt(1 - beta(t)) * x[t-1], sqrt(beta(t)))
  generate x[T]   ~ Normal(0, 1)
  generate x[t-1] ~ Guess(x[t], eps)
  objective denoising
  train { steps = STEPS, batch = 1024, lr = 1e-3, log_every = 50, checkpoint_every = 100000 }
}
"""


def run(folder: Path, nproc: int, steps: int) -> float:
    (folder / "bench.dtg").write_text(MODEL.replace("STEPS", str(steps)))
    args = [
        sys.executable,
        "-m",
        "dtg",
        "train",
        "bench.dtg",
        "--out",
        f"run{nproc}",
        "--no-progress",
        "--set",
        "shards=2",
    ]
    if nproc > 1:
        args += ["--nproc", str(nproc)]
    start = time.perf_counter()
    subprocess.run(
        args,
        cwd=folder,
        check=True,
        capture_output=True,
        env={**os.environ, "OMP_NUM_THREADS": str(2 // nproc)},
    )
    wall = time.perf_counter() - start
    lines = [
        json.loads(x) for x in (folder / f"run{nproc}" / "metrics.jsonl").read_text().splitlines()
    ]
    return {"wall_s": wall, "steps_per_s": lines[-1].get("steps_per_s")}


def main() -> None:
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    with tempfile.TemporaryDirectory() as folder:
        one = run(Path(folder), 1, steps)
        two = run(Path(folder), 2, steps)
    print(
        json.dumps(
            {
                "steps": steps,
                "batch": 1024,
                "one_process": one,
                "two_processes": two,
                "speedup": one["wall_s"] / two["wall_s"],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()

"""The cost of held-out evaluation during training (issue 26): the same run with and without
``eval_every``, alternated, wall time ratio (one torch thread).

    OMP_NUM_THREADS=1 python benchmarks/heldout_overhead.py --steps 300 --every 100
    OMP_NUM_THREADS=1 python benchmarks/heldout_overhead.py --steps 200 --every 50 --levels 1

Prints JSON: seconds per run of each kind (median of ``--rounds``), their ratio, and the
evaluation seconds the metrics lines record.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

import dtg

ROOT = Path(__file__).resolve().parents[1]


def one_run(source: Path, steps: int, overrides: dict) -> tuple[float, float]:
    torch.manual_seed(0)
    model = dtg.load(source).compile("cpu")
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        dtg.train(model, steps=steps, out=out, progress=False, overrides=overrides)
        wall = time.perf_counter() - start
        lines = [json.loads(x) for x in (Path(out) / "metrics.jsonl").read_text().splitlines()]
    return wall, sum(r.get("eval_seconds", 0.0) for r in lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, default=ROOT / "examples/compare/masked.dtg")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--examples", type=int, default=360)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--levels", type=int, default=0, help="eval_levels (0 = every level)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with_eval = {"eval_every": args.every, "eval_examples": args.examples}
    with_eval["eval_levels"] = args.levels
    plain, evaluated, eval_seconds = [], [], []
    for _ in range(args.rounds):  # alternated, so that drifts of the machine hit both
        plain.append(one_run(args.model, args.steps, {})[0])
        wall, inside = one_run(args.model, args.steps, with_eval)
        evaluated.append(wall)
        eval_seconds.append(inside)
    base, timed = statistics.median(plain), statistics.median(evaluated)
    print(json.dumps({
        "model": args.model.name, "steps": args.steps, "eval_every": args.every,
        "eval_examples": args.examples, "eval_levels": args.levels, "seconds_without": base, "seconds_with": timed,
        "ratio": timed / base, "eval_seconds_recorded": statistics.median(eval_seconds),
    }, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()

"""``torch.compile`` on one TB iteration (issue 23): eager, each net compiled (what the train option
``compile = true`` does) and the whole loss compiled, on ``examples/gmm25_tb.dtg`` (T = 100,
batch 300, Adam). For each: the first step's seconds (compiling included) and the steady
seconds per step (mean of ``--steps``). One torch thread.

    OMP_NUM_THREADS=1 python benchmarks/compile_tb.py --out benchmarks/results/compile_tb_cpu.json
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import torch

import dtg
from dtg.runtime.net_execution import TrainingNets

ROOT = Path(__file__).resolve().parents[1]


def fresh() -> dtg.backends.torch.CompiledModel:
    torch.manual_seed(0)
    model = dtg.load(ROOT / "examples" / "gmm25_tb.dtg").compile("cpu")
    model.objective.log_z_started.fill_(True)  # no first-batch estimate: every step alike
    return model


def timed(model, loss: Callable, batch: int, steps: int) -> tuple[float, float]:
    """:returns: the first step's seconds and the mean of ``steps`` later ones."""
    optimizer = torch.optim.Adam(model.param_groups(1e-3))

    def step() -> None:
        value = loss(batch)
        optimizer.zero_grad()
        value.backward()
        optimizer.step()

    start = time.perf_counter()
    step()
    first = time.perf_counter() - start
    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return first, (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=300)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--skip-whole", action="store_true", help="skip the whole-loss compile")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    result: dict = {"batch": args.batch, "columns": "[first step s (compiling), steady s/step]"}
    model = fresh()
    result["eager"] = timed(model, model.loss, args.batch, args.steps)
    model = fresh()
    with TrainingNets(model, "fp32", True, torch.device("cpu")):
        result["nets_compiled"] = timed(model, model.loss, args.batch, args.steps)
    if not args.skip_whole:
        model = fresh()
        result["whole_loss_compiled"] = timed(
            model, torch.compile(model.loss), args.batch, args.steps
        )
    text = json.dumps(result, indent=1)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()

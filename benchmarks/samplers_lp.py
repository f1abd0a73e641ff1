"""Samplers with the Langevin parametrisation and local search (issue 20): runs and tables.

Each run trains one variant of an example from the command line (``dtg train``, one torch
thread) and evaluates it (``dtg eval --json``, K = 2,000 trajectories), writing
``benchmarks/results/samplers_lp/<target>_<variant>_s<seed>_<steps>.json`` and a plot of 2,000
samples beside it (``….png``). The variants of the
25GMM ablation are made from ``examples/gmm25_lp.dtg`` by removing what they do not use, so
that every variant has the same nets, schedule and budget::

    tb          trajectory balance, on-policy (the drift alone)
    expl        + exploration noise 0.1, decayed over the first 5,000 iterations
    expl_lp     + the Langevin parametrisation: scale(t) * grad(logr, x[t]) in the drift
    expl_ls     + local search (MALA every 100 iterations; backward TB from what it found)
    expl_lp_ls  both: the example as written

Usage::

    OMP_NUM_THREADS=1 python benchmarks/samplers_lp.py run gmm25 expl_lp_ls --seed 0 --steps 10000
    python benchmarks/samplers_lp.py table            # a markdown table of every result

Funnel and Manywell run their own ``examples/<target>_lp.dtg`` (variant ``expl_lp_ls``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "samplers_lp"
VARIANTS = ("tb", "expl", "expl_lp", "expl_ls", "expl_lp_ls")
KEYS = ("delta_log_z", "delta_log_z_rw", "log_z_elbo", "modes_covered", "w2", "eubo")
KEYS += ("well_sign_error_max", "well_sign_error_mean")


def variant_source(target: str, variant: str) -> str:
    """The example's text with what ``variant`` does not use removed."""
    text = (ROOT / "examples" / f"{target}_lp.dtg").read_text()
    if "lp" not in variant:
        text = text.replace(" + scale(t) * grad(logr, x[t])", "")
        text = re.sub(r"\n  net scale [^\n]*", "", text)
    if "ls" not in variant:
        text = re.sub(r",\s*local_search = true(, ls_buffer = \d+)?", "", text)
    if "expl" not in variant:
        text = text.replace("explore = 0.1, explore_steps = 5000", "explore = 0")
    return text.replace(f"model {target}_lp", f"model {target}_{variant}")


def run(target: str, variant: str, seed: int, steps: int) -> dict:
    """Train and evaluate one variant; the result is also written under :data:`RESULTS`."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = f"{target}_{variant}_s{seed}_{steps}"
    folder = RESULTS / "runs" / name
    folder.mkdir(parents=True, exist_ok=True)
    source = folder / f"{target}_{variant}.dtg"
    source.write_text(variant_source(target, variant))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    dtg = [sys.executable, "-m", "dtg"]
    start = time.time()
    subprocess.run(
        [*dtg, "train", str(source), "--seed", str(seed), "--steps", str(steps),
         "--out", str(folder), "--force", "--no-progress"],
        check=True, env=env,
    )  # fmt: skip
    wall = time.time() - start
    evaluated = subprocess.run(
        [*dtg, "eval", str(source), "--checkpoint", str(folder / "checkpoint.pt"), "--json"],
        check=True, env=env, capture_output=True, text=True,
    )  # fmt: skip
    metrics = json.loads(evaluated.stdout)
    subprocess.run(
        [*dtg, "sample", str(source), "--checkpoint", str(folder / "checkpoint.pt"),
         "--plot", str(RESULTS / f"{name}.png"), "-o", str(folder / "samples.npy")],
        check=True, env=env, capture_output=True,
    )  # fmt: skip
    result = {"target": target, "variant": variant, "seed": seed, "steps": steps,
              "train_wall_s": round(wall, 1), "metrics": metrics}  # fmt: skip
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=1) + "\n")
    (folder / "checkpoint.pt").unlink(missing_ok=True)  # the buffers make it large
    return result


def table() -> str:
    """Every result as markdown rows: mean ± std over seeds per (target, variant, steps)."""
    groups: dict[tuple, list[dict]] = {}
    for path in sorted(RESULTS.glob("*.json")):
        result = json.loads(path.read_text())
        key = (result["target"], result["variant"], result["steps"])
        groups.setdefault(key, []).append(result)
    rows = ["| target | variant | iterations | seeds | " + " | ".join(KEYS) + " | train wall |"]
    rows.append("|" + "---|" * (len(KEYS) + 5))
    for (target, variant, steps), results in sorted(groups.items()):
        cells = []
        for key in KEYS:
            values = [r["metrics"][key] for r in results if key in r["metrics"]]
            if not values:
                cells.append("–")
            elif len(values) == 1:
                cells.append(f"{values[0]:.3g}")
            else:
                cells.append(f"{statistics.mean(values):.3g} ± {statistics.pstdev(values):.2g}")
        seeds = ",".join(str(r["seed"]) for r in results)
        wall = statistics.mean(r["train_wall_s"] for r in results) / 60
        rows.append(
            f"| {target} | {variant} | {steps:,} | {seeds} | " + " | ".join(cells)
            + f" | {wall:.0f} min |"
        )  # fmt: skip
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    one = commands.add_parser("run", help="train and evaluate one variant")
    one.add_argument("target", choices=("gmm25", "funnel", "manywell"))
    one.add_argument("variant", choices=VARIANTS)
    one.add_argument("--seed", type=int, default=0)
    one.add_argument("--steps", type=int, default=10_000)
    commands.add_parser("table", help="print the markdown table of every result")
    args = parser.parse_args(argv)
    if args.command == "run":
        print(json.dumps(run(args.target, args.variant, args.seed, args.steps)["metrics"]))
    else:
        print(table())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

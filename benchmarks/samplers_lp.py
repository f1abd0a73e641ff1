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
    OMP_NUM_THREADS=1 python benchmarks/samplers_lp.py speed  # seconds per iteration, ratios

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

from cli_runs import train_and_eval

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "samplers_lp"
VARIANTS = ("tb", "expl", "expl_lp", "expl_ls", "expl_lp_ls", "expl_long_lp_ls")
VARIANTS += ("expl_floor_lp_ls", "expl_floor05_lp_ls", "pis_expl_lp_ls")
#: The variants :func:`speed` times: the ablation's, and PIS's nets; the exploration-schedule
#: variants (long, floor) cost what ``expl_lp_ls`` does.
TIMED = ("tb", "expl", "expl_lp", "expl_ls", "expl_lp_ls", "pis_expl_lp_ls")
KEYS = ("delta_log_z", "delta_log_z_rw", "log_z_elbo", "modes_covered", "w2", "eubo")
KEYS += ("well_sign_error_max", "well_sign_error_mean")


def _baseline(text: str) -> str:
    """The example as the first LP runs had it (``mlp`` nets, exploration decayed to 0), so
    every variant means the same whichever of these choices the example now makes."""
    text = re.sub(r",\s*explore_floor = [0-9.]+", "", text)
    return text.replace("pis(hidden = 64", "mlp(hidden = [64, 64]")


def variant_source(target: str, variant: str, steps: int) -> str:
    """The example's text with what ``variant`` does not use removed; ``expl_long`` explores
    with noise 0.2 (gfn-diffusion's TB + Expl. + LP factor) decayed over all ``steps``;
    ``expl_floor`` keeps the noise at 0.1 throughout, ``expl_floor05`` decays it to 0.05;
    ``pis`` swaps both nets' ``mlp(hidden = [64, 64], …)`` for PIS's net ``pis(hidden = 64, …)``."""
    text = _baseline((ROOT / "examples" / f"{target}_lp.dtg").read_text())
    for tag, floor in (("floor05", 0.05), ("floor", 0.1)):
        if tag in variant:
            text = text.replace(
                "explore_steps = 5000", f"explore_steps = 5000, explore_floor = {floor}"
            )
            break
    if variant.startswith("pis_"):
        text = text.replace("mlp(hidden = [64, 64]", "pis(hidden = 64")
    if "long" in variant:
        text = text.replace("explore = 0.1, explore_steps = 5000",
                            f"explore = 0.2, explore_steps = {steps}")  # fmt: skip
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
    source.write_text(variant_source(target, variant, steps))
    wall, metrics = train_and_eval(source, folder, steps, seed)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    dtg = [sys.executable, "-m", "dtg"]
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
        if "target" not in result:  # speed.json
            continue
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


def speed(iterations: int = 20, rounds: int = 3) -> dict:
    """Seconds per training iteration of each 25GMM variant, measured in this process in
    interleaved rounds (so that a busy machine slows every variant alike), with each variant's
    ratio to plain TB. Local search's round (every 100 iterations) is timed on its own."""
    import torch  # heavy: only this command runs models in this process

    import dtg

    torch.set_num_threads(1)
    models = {}
    for variant in TIMED:
        torch.manual_seed(0)
        model = dtg.loads(variant_source("gmm25", variant, 10_000)).compile("cpu")
        optimiser = torch.optim.Adam(model.param_groups(1e-3))
        models[variant] = (model, optimiser)

    def step(model, optimiser) -> None:
        loss = model.loss(300)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()

    for model, optimiser in models.values():  # warm up; local search fills its first buffer
        for _ in range(3):
            step(model, optimiser)
    times = {variant: [] for variant in models}
    for _ in range(rounds):
        for variant, (model, optimiser) in models.items():
            search = getattr(model.objective, "local_search", None)
            start = time.perf_counter()
            for _ in range(iterations):
                if search is not None:  # time the iterations between rounds here
                    search.every = 10**9
                step(model, optimiser)
            times[variant].append((time.perf_counter() - start) / iterations)
    out = {v: {"s_per_iteration": round(min(t), 4)} for v, t in times.items()}
    for v in out:
        out[v]["ratio_to_tb"] = round(out[v]["s_per_iteration"] / out["tb"]["s_per_iteration"], 3)
    model, _ = models["expl_lp_ls"]
    search = model.objective.local_search
    start = time.perf_counter()
    search.search(model.reward_fn, 300)
    out["ls_round_s"] = round(time.perf_counter() - start, 3)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    one = commands.add_parser("run", help="train and evaluate one variant")
    one.add_argument("target", choices=("gmm25", "funnel", "manywell"))
    one.add_argument("variant", choices=VARIANTS)
    one.add_argument("--seed", type=int, default=0)
    one.add_argument("--steps", type=int, default=10_000)
    commands.add_parser("table", help="print the markdown table of every result")
    commands.add_parser("speed", help="seconds per iteration of each 25GMM variant (JSON)")
    args = parser.parse_args(argv)
    if args.command == "speed":
        print(json.dumps(speed(), indent=1))
    elif args.command == "run":
        print(json.dumps(run(args.target, args.variant, args.seed, args.steps)["metrics"]))
    else:
        print(table())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

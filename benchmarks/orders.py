"""A learned order against the uniform order on digits at equal budget (issue 22).

Two ``MashRandom`` models of the 64 grey-level digit tokens with the same token net (a
transformer of width 64 and depth 2), optimiser, batch and steps:

    uniform   MashRandom(x[t-1]) and Guess(x[t], logits): the any-order loss, one level per
              example per step
    learned   MashRandom(x[t-1], order = pick), Guess(…, order = reveal): the ELBO along one
              whole destruction trajectory per example per step (64 levels of three nets),
              REINFORCE with a leave-one-out baseline for ``pick``

Each run trains with ``dtg train`` (one torch thread) and reports ``dtg eval --json``: the
held-out NELBO (bits per token; unbiased for both) and the digits classifier on samples.

    OMP_NUM_THREADS=1 python benchmarks/orders.py run --steps 300
    python benchmarks/orders.py table

Results: ``benchmarks/results/orders/<variant>_<steps>.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cli_runs import train_and_eval

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "orders"

TEMPLATE = """model order_{variant} {{
  data x : token(17)[64] ~ digits()
  steps T = 64
  net logits : (token(17)[64], time) -> real[64, 17] = transformer(width = 64, depth = 2, heads = 4)
{nets}  destroy  x[t]   ~ MashRandom(x[t-1]{pick})
  generate x[T]   = masked
  generate x[t-1] ~ Guess(x[t], logits{reveal})
  objective masking
  train {{ batch = {batch}, lr = 1e-3 }}
}}
"""
NETS = (
    "  net pick : (token(17)[64]) -> real[64] = mlp(hidden = [128], zero_init = true)\n"
    "  net reveal : (token(17)[64], time) -> real[64] = mlp(hidden = [128], zero_init = true)\n"
)


def source(variant: str, batch: int) -> str:
    learned = variant == "learned"
    return TEMPLATE.format(
        variant=variant, batch=batch, nets=NETS if learned else "",
        pick=", order = pick" if learned else "", reveal=", order = reveal" if learned else "",
    )  # fmt: skip


def run(variant: str, steps: int, batch: int) -> dict:
    folder = RESULTS / "runs" / f"{variant}_{steps}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"order_{variant}.dtg"
    path.write_text(source(variant, batch))
    wall, metrics = train_and_eval(path, folder, steps)
    result = {"variant": variant, "steps": steps, "batch": batch, "train_wall_s": round(wall, 1),
              "metrics": metrics}  # fmt: skip
    (RESULTS / f"{variant}_{steps}.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result), flush=True)
    return result


def table() -> str:
    rows = [
        "| order | steps × batch | held-out bits/token | class TV | confidence samples / data "
        "| train wall |",
        "|---|---|---|---|---|---|",
    ]
    for path in sorted(RESULTS.glob("*.json")):
        r = json.loads(path.read_text())
        m = r["metrics"]
        rows.append(
            f"| {r['variant']} | {r['steps']} × {r['batch']} | {m['bits_per_dim']:.3f} | "
            f"{m['class_histogram_tv']:.3f} | {m['confidence_mean']:.3f} / "
            f"{m['data_confidence_mean']:.3f} | {r['train_wall_s'] / 60:.1f} min |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    one = commands.add_parser("run")
    one.add_argument("--variants", default="uniform,learned")
    one.add_argument("--steps", type=int, default=300)
    one.add_argument("--batch", type=int, default=16)
    commands.add_parser("table")
    args = parser.parse_args()
    if args.command == "table":
        print(table())
        return
    for variant in args.variants.split(","):
        run(variant, args.steps, args.batch)


if __name__ == "__main__":
    main()

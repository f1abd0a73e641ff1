"""Hyperschedules on digits at equal budget (issue 21): held-out bits, sample quality, speed.

Every variant is one ``Mask`` model over the 64 grey-level tokens of the 8×8 digits (V = 17)
with the base schedule ``alpha(tau) = 1 - tau / K`` and one of the built-in hyperschedules; all
share the transformer's width and depth, the optimiser, the batch and the number of steps::

    staircase   simple_annealing(width = 1), T = 64; causal, untimed net (one pass per step)
    staircase_timed  the same schedule with the others' timed, bidirectional net (same size)
    block4      block_annealing(size = 4,  levels = 4),  T = 64
    block8      block_annealing(size = 8,  levels = 8),  T = 64
    block16     block_annealing(size = 16, levels = 16), T = 64
    flat        block_annealing(size = 64, levels = 64), T = 64 (MDLM's shared 1 - t/T)
    hybrid      hybrid_annealing(size = 8, levels = 2),  T = 72
    flat_redraw the flat schedule with hybrid noising: kept tokens redrawn uniformly, 1 % a level

Each run trains with ``dtg train`` (one torch thread), evaluates the held-out NELBO with
``dtg eval --json``: the held-out NELBO (bits per token) and the built-in digits classifier on
samples against held-out data (the total variation between their class histograms, and the
mean confidence, max class probability, on both); and in this process the sampling time per
image (500 images in one batch).

    OMP_NUM_THREADS=1 python benchmarks/hyperschedules.py run --steps 2000   # every variant
    OMP_NUM_THREADS=1 python benchmarks/hyperschedules.py run --variants flat,block8
    python benchmarks/hyperschedules.py table        # the Markdown table of the results
    python benchmarks/hyperschedules.py plot         # bits/token against sampling time
    OMP_NUM_THREADS=1 python benchmarks/hyperschedules.py speed  # sampling time, cache or not

Results: ``benchmarks/results/hyperschedules/<variant>_<steps>.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from cli_runs import train_and_eval

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "hyperschedules"

#: variant → (hyperschedule call, K, T, causal net)
VARIANTS = {
    "staircase": ("simple_annealing(t, i, width = 1)", 1, 64, True),
    "staircase_timed": ("simple_annealing(t, i, width = 1)", 1, 64, False),
    "block4": ("block_annealing(t, i, size = 4, levels = 4)", 4, 64, False),
    "block8": ("block_annealing(t, i, size = 8, levels = 8)", 8, 64, False),
    "block16": ("block_annealing(t, i, size = 16, levels = 16)", 16, 64, False),
    "flat": ("block_annealing(t, i, size = 64, levels = 64)", 64, 64, False),
    "hybrid": ("hybrid_annealing(t, i, size = 8, levels = 2)", 2, 72, False),
    "flat_redraw": ("block_annealing(t, i, size = 64, levels = 64)", 64, 64, False),
}
#: variants whose kept tokens are also redrawn uniformly (hybrid noising), and how often
REDRAW = {"flat_redraw": 0.01}

TEMPLATE = """model hyper_{variant} {{
  data x : token(17)[64] ~ digits()
  steps T = {steps}
  schedule alpha(tau) = 1 - tau / {levels}
  schedule level(t, i) = {call}
  net logits : {signature} = transformer(
      width = {width}, depth = {depth}, heads = 4, dropout = 0.1{causal})
  destroy  x[t]   ~ Mask(x[t-1], keep = alpha(level(t, i)) / alpha(level(t - 1, i)){redraw})
  generate x[T]   = masked
  generate x[t-1] ~ Guess(x[t], logits)
  objective masking
  train {{ batch = 64, lr = 1e-3 }}
}}
"""


def source(variant: str, width: int, depth: int) -> str:
    call, levels, steps, causal = VARIANTS[variant]
    inputs = "(token(17)[64])" if causal else "(token(17)[64], time)"
    return TEMPLATE.format(
        variant=variant, steps=steps, levels=levels, call=call, width=width, depth=depth,
        signature=f"{inputs} -> real[64, 17]", causal=", causal = true" if causal else "",
        redraw=f", redraw = {REDRAW[variant]}" if variant in REDRAW else "",
    )  # fmt: skip


def sampling(folder: Path, text_path: Path, n: int) -> dict:
    """The sampling time per image (``n`` images in one batch, after a warm-up) and the
    number of parameters; the sample quality comes from ``dtg eval``."""
    import torch  # heavy: only the timing loads a model in this process

    import dtg
    from dtg.runtime.checkpoint import load_checkpoint, restore_model

    torch.set_num_threads(1)
    model = dtg.load(text_path).compile("cpu")
    restore_model(model, load_checkpoint(folder / "checkpoint.pt"))
    model.eval()
    torch.manual_seed(0)
    with torch.no_grad():
        model.sample(8)  # warm-up
        start = time.perf_counter()
        model.sample(n)
        per_image = (time.perf_counter() - start) / n
    return {
        "sample_ms_per_image": round(1e3 * per_image, 2),
        "params": sum(p.numel() for p in model.parameters()),
    }


def run(variant: str, steps: int, width: int, depth: int, n: int) -> dict:
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = f"{variant}_{steps}"
    folder = RESULTS / "runs" / name
    folder.mkdir(parents=True, exist_ok=True)
    text_path = folder / f"hyper_{variant}.dtg"
    text_path.write_text(source(variant, width, depth))
    wall, metrics = train_and_eval(text_path, folder, steps)
    metrics.update(sampling(folder, text_path, n))
    result = {
        "variant": variant, "call": VARIANTS[variant][0], "levels_T": VARIANTS[variant][2],
        "steps": steps, "width": width, "depth": depth, "train_wall_s": round(wall, 1),
        "metrics": metrics,
    }  # fmt: skip
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result), flush=True)
    return result


def speed(batch: int, rounds: int, width: int, depth: int) -> dict:
    """Sampling time per image of fresh (untrained) models in evaluation mode, interleaved in
    rounds: the staircase with its key/value cache and without (level by level, the path every
    other variant takes), blocks of 8 and the flat schedule; ratios to the cached staircase."""
    import statistics

    import torch  # heavy: only this command runs models in this process

    import dtg

    torch.set_num_threads(1)
    models = {}
    for variant in ("staircase", "block8", "flat"):
        torch.manual_seed(0)
        models[variant] = dtg.loads(source(variant, width, depth)).compile("cpu").eval()
    models["staircase_no_cache"] = dtg.loads(source("staircase", width, depth)).compile("cpu")
    models["staircase_no_cache"].load_state_dict(models["staircase"].state_dict())
    models["staircase_no_cache"].eval().generate.set_decoder(None)
    times: dict[str, list[float]] = {name: [] for name in models}
    with torch.no_grad():
        for model in models.values():
            model.sample(4)  # warm-up
        for round_ in range(rounds):
            order = list(models) if round_ % 2 == 0 else list(models)[::-1]
            for name in order:
                start = time.perf_counter()
                models[name].sample(batch)
                times[name].append((time.perf_counter() - start) / batch)
    medians = {name: statistics.median(ts) for name, ts in times.items()}
    result = {
        "batch": batch, "rounds": rounds, "width": width, "depth": depth,
        "torch_threads": torch.get_num_threads(),
        "ms_per_image": {name: round(1e3 * m, 3) for name, m in medians.items()},
        "ratio_to_cached_staircase": {
            name: round(m / medians["staircase"], 2) for name, m in medians.items()
        },
    }  # fmt: skip
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "speed.json").write_text(json.dumps(result, indent=1) + "\n")
    return result


def table() -> str:
    rows = [
        "| variant | hyperschedule | levels T | train steps | params | held-out bits/token "
        "| class TV (samples vs data) | confidence samples / data | ms per image | train wall |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for path in sorted(RESULTS.glob("*_*.json")):
        r = json.loads(path.read_text())
        m = r["metrics"]
        rows.append(
            f"| {r['variant']} | `{r['call']}` | {r['levels_T']} | {r['steps']:,} | "
            f"{m['params']:,} | {m['bits_per_dim']:.3f} | {m['class_histogram_tv']:.3f} | "
            f"{m['confidence_mean']:.3f} / {m['data_confidence_mean']:.3f} | "
            f"{m['sample_ms_per_image']:.1f} | {r['train_wall_s'] / 60:.1f} min |"
        )
    return "\n".join(rows)


def plot(path: Path) -> Path:
    """The trade-off: held-out bits per token against sampling time per image, one point per
    variant (labelled), written to ``path``."""
    # matplotlib is heavy: only this command draws
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.5, 4.5))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for result in sorted(RESULTS.glob("*_*.json")):
        r = json.loads(result.read_text())
        m = r["metrics"]
        axes.scatter(m["sample_ms_per_image"], m["bits_per_dim"], s=30)
        axes.annotate(f"{r['variant']} (T={r['levels_T']})",
                      (m["sample_ms_per_image"], m["bits_per_dim"]),
                      textcoords="offset points", xytext=(4, 4), fontsize=8)  # fmt: skip
    axes.set_xscale("log")
    axes.minorticks_off()
    ticks = [1, 2, 5, 10, 20, 50, 100]
    axes.set_xticks(ticks, [str(t) for t in ticks])
    axes.set_xlabel("sampling time per image (ms, one CPU thread)")
    axes.set_ylabel("held-out bits per token")
    axes.set_title("hyperschedules on digits: equal steps, equal net size")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    one = commands.add_parser("run")
    one.add_argument("--variants", default=",".join(VARIANTS))
    one.add_argument("--steps", type=int, default=2000)
    one.add_argument("--width", type=int, default=64)
    one.add_argument("--depth", type=int, default=2)
    one.add_argument("--samples", type=int, default=500)
    commands.add_parser("table")
    drawing = commands.add_parser("plot")
    drawing.add_argument("-o", type=Path, default=RESULTS / "tradeoff.png")
    timing = commands.add_parser("speed")
    timing.add_argument("--batch", type=int, default=64)
    timing.add_argument("--rounds", type=int, default=5)
    timing.add_argument("--width", type=int, default=64)
    timing.add_argument("--depth", type=int, default=2)
    args = parser.parse_args()
    if args.command == "table":
        print(table())
        return
    if args.command == "plot":
        print(f"wrote {plot(args.o)}")
        return
    if args.command == "speed":
        print(json.dumps(speed(args.batch, args.rounds, args.width, args.depth), indent=1))
        return
    for variant in args.variants.split(","):
        run(variant, args.steps, args.width, args.depth, args.samples)


if __name__ == "__main__":
    main()

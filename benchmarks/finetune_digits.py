"""Fine-tuning the digits prior toward even digits: relative trajectory balance vs DDPO.

Both methods start from the same trained ``ddpm_digits`` prior (its EMA weights) and get the
same budget (steps × batch of generated trajectories, seed 0); each runs at the learning rates
given. Figures (:mod:`dtg.runtime.finetune_eval`, 1,000 samples each): E[log r], the fraction
of samples the classifier puts in {0, 2, 4, 6, 8}, diversity (mean pairwise RMS distance) and
MMD to the prior's samples, with the prior's own figures. Prints JSON.

    dtg train examples/ddpm_digits.dtg            # the prior, ~5 min on 2 cores (or --train-parent)
    python benchmarks/finetune_digits.py
    python benchmarks/finetune_digits.py --steps 100 --rtb-lr 1e-5 --ddpo-lr 1e-4

Reference picture (Venkatraman et al. 2024, arXiv 2405.20971, Table 2, MNIST even digits):
RTB reaches high reward while keeping diversity near the prior's; DDPO reaches high reward by
collapsing (lower diversity).
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

import torch

import dtg
from dtg.runtime.checkpoint import effective_state, load_checkpoint
from dtg.runtime.finetune_eval import evaluate_finetune, mean_pairwise_distance
from dtg.runtime.plots import plot_samples

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = {"rtb": "rtb_even_digits.dtg", "ddpo": "ddpo_even_digits.dtg"}


def parent_state(path: Path, train_if_missing: bool) -> dict[str, torch.Tensor]:
    if not path.is_file():
        if not train_if_missing:
            raise SystemExit(
                f"no prior at {path}: run `dtg train examples/ddpm_digits.dtg` first "
                "(or pass --train-parent)"
            )
        parent = dtg.load(ROOT / "examples" / "ddpm_digits.dtg").compile("cpu")
        dtg.train(parent, out=path.parent, progress=False)
    return effective_state(load_checkpoint(path, torch.device("cpu")))


def fine_tune(
    method: str, lr: float, steps: int, state: dict, n: int, plots: Path | None
) -> dict[str, float]:
    torch.manual_seed(0)
    model = dtg.load(ROOT / "examples" / EXAMPLES[method]).compile("cpu")
    model.init_from_parent(state)
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        dtg.train(model, steps=steps, lr=lr, seed=0, out=out, progress=False)
        seconds = time.perf_counter() - start
    figures = evaluate_finetune(model, n=n, seed=0)
    figures.update(method=method, lr=lr, steps=steps, train_seconds=seconds)
    if plots is not None:
        torch.manual_seed(1)
        posterior, prior = model.sample(64), model.prior.sample(64)
        plot_samples(
            posterior,
            model.ir.message.space,
            plots / f"{method}_lr{lr:g}.png",
            reference=prior,
            title=f"{method} lr {lr:g}: fine-tuned (left) and prior (right), step {steps}",
        )
    return figures


@torch.no_grad()
def target_reference(state: dict, n: int = 2000) -> dict[str, float]:
    """What RTB aims at, p₀(x)·r(x) (β = 1), by sampling-importance-resampling: n prior
    samples resampled n/2 times with weights r. An independent reference for the figures."""
    torch.manual_seed(0)
    model = dtg.load(ROOT / "examples" / EXAMPLES["rtb"]).compile("cpu")
    model.init_from_parent(state)
    x = model.prior.sample(n)
    log_r = model.reward_fn(x)
    picked = x[torch.multinomial(log_r.exp(), n // 2, replacement=True)]
    log_r_picked = model.reward_fn(picked)
    return {
        "reward_mean": float(log_r_picked.mean()),
        "fraction_rewarded": float((log_r_picked > math.log(0.5)).double().mean()),
        "diversity": mean_pairwise_distance(picked),
        "note": "p0 * r by importance resampling of prior samples (duplicates lower diversity)",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--parent", type=Path, default=ROOT / "runs/ddpm_digits/checkpoint.pt")
    parser.add_argument("--train-parent", action="store_true", help="train the prior if missing")
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--rtb-lr", type=float, nargs="+", default=[1e-5, 1e-4, 3e-4])
    parser.add_argument("--ddpo-lr", type=float, nargs="+", default=[1e-5, 1e-4, 3e-4])
    parser.add_argument("-n", type=int, default=1000, help="samples per figure")
    parser.add_argument("--plots", type=Path, help="write a sample grid per run in this folder")
    parser.add_argument("--reference-only", action="store_true", help="only the target's figures")
    args = parser.parse_args()
    if args.plots is not None:
        args.plots.mkdir(parents=True, exist_ok=True)
    state = parent_state(args.parent, args.train_parent)
    reference = target_reference(state)
    if args.reference_only:
        print(json.dumps({"target": reference}, indent=2))
        return
    runs = [fine_tune("rtb", lr, args.steps, state, args.n, args.plots) for lr in args.rtb_lr]
    runs += [fine_tune("ddpo", lr, args.steps, state, args.n, args.plots) for lr in args.ddpo_lr]
    prior = {k[len("prior_") :]: v for k, v in runs[0].items() if k.startswith("prior_")}
    prior["mmd_to_prior"] = runs[0]["mmd_prior_to_prior"]
    keep = ("reward_mean", "fraction_rewarded", "diversity", "mmd_to_prior", "train_seconds")
    table = [{"method": r["method"], "lr": r["lr"], **{k: r[k] for k in keep}} for r in runs]
    batch = dtg.load(ROOT / "examples" / EXAMPLES["rtb"]).model().train.get("batch")
    print(
        json.dumps({"steps": args.steps, "batch": batch, "prior": prior, "runs": table}, indent=2)
    )


if __name__ == "__main__":
    main()

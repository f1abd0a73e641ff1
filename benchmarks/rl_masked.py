"""Exact (on-policy) against order-free scoring when fine-tuning a masked diffusion model (issue 22).

The trained ``mdlm_digits`` prior (64 grey-level tokens, T = 64) is fine-tuned toward even
digits (``classify(x, classes = [0, 2, 4, 6, 8])``) by

    pg_trajectory    policy_gradient, GRPO advantages, the exact trajectory log-probability
    pg_diffu_grpo    … scored by one pass on the fully masked sample (d1)
    pg_coupled       … scored by two complementary masks at a sampled level (DiffuCoder)
    rtb_trajectory   relative_trajectory_balance with the exact trajectory log-probabilities
    rtb_coupled      … with the coupled order-free score for posterior and prior alike
    rtb_diffu_grpo   … with the one-pass score

All runs share batch, learning rate, steps (so *equal samples*); the net evaluations each one
spends are counted by a forward hook on the token net (rows through the net, posterior and
prior), so runs at *equal net evaluations* are the order-free ones with ``--steps`` scaled by
the measured ratio (``run --match-evals``). Figures (1,000 samples each,
:mod:`dtg.runtime.finetune_eval`): E[log r], fraction even, diversity (mean pairwise RMS
distance), MMD to the prior; and on 256 of the fine-tuned model's own trajectories the gap
between the estimates: each order-free score's sum against the exact log p(τ) of the same
sample (mean difference and correlation).

    dtg train examples/mdlm_digits.dtg --out runs/mdlm_digits      # the prior, ~1 h, 1 core
    OMP_NUM_THREADS=1 python benchmarks/rl_masked.py run --variants pg_trajectory --seeds 0 1 2
    python benchmarks/rl_masked.py table        # markdown table + reward-vs-diversity plot

Results: ``benchmarks/results/rl_masked/<variant>_s<seed>_<steps>.json``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

import dtg
from dtg.ir.options import Scoring
from dtg.objectives.scoring import order_free_log_probs, score_masks
from dtg.objectives.trajectories import sample_trajectories
from dtg.runtime.checkpoint import effective_state, load_checkpoint, restore_model
from dtg.runtime.finetune_eval import evaluate_finetune
from dtg.runtime.plots import plot_samples

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "rl_masked"
OBJECTIVES = {
    "pg": "policy_gradient(advantage = group, group = {group}, clip = 0.2, epochs = 2, "
    "kl = 0.01, scoring = {scoring})",
    "rtb": "relative_trajectory_balance(beta = 1, lr_logZ = 0.1, scoring = {scoring})",
}
VARIANTS = [f"{m}_{s.value}" for m in OBJECTIVES for s in Scoring]
CHILD = """
model rl_{variant} extends mdlm_digits {{
  reward even(x) = classify(x, classes = [0, 2, 4, 6, 8])
  objective {objective}
  train {{ batch = {batch}, lr = {lr} }}
}}
"""


def build(variant: str, batch: int, lr: float, group: int) -> dtg.Program:
    method, scoring = variant.split("_", 1)
    objective = OBJECTIVES[method].format(group=group, scoring=scoring)
    parent = (ROOT / "examples" / "mdlm_digits.dtg").read_text()
    text = parent + CHILD.format(variant=variant, objective=objective, batch=batch, lr=lr)
    return dtg.loads(text, file=f"<rl_masked {variant}>")


class EvalCounter:
    """Rows through every token net of a model and its prior (forward hooks)."""

    def __init__(self, model) -> None:
        self.rows = 0
        nets = list(model.nets.values()) + list(model.prior.nets.values())
        self.handles = [net.register_forward_hook(self._count) for net in nets]

    def _count(self, module, inputs, output) -> None:
        self.rows += int(output.shape[0])

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()


@torch.no_grad()
def estimate_gap(model, n: int = 256, seed: int = 0) -> dict[str, float]:
    """Each order-free score's sum against the exact log p(τ) on the same ``n`` samples of the
    model's own generation chain (the quantity PPO's ratio and RTB are defined with)."""
    torch.manual_seed(seed)
    traj = sample_trajectories(model, n, with_destruction=False)
    exact = (traj.log_start + traj.log_pf.sum(1)).double()
    x0 = traj.states[0].long()
    out = {"exact_mean": float(exact.mean())}
    for kind in (Scoring.DIFFU_GRPO, Scoring.COUPLED):
        score = order_free_log_probs(model.generate, x0, score_masks(kind, model, x0))
        score = score.sum(1).double()
        gap = score - exact
        pair = torch.stack([score, exact])
        out[f"{kind.value}_mean"] = float(score.mean())
        out[f"{kind.value}_minus_exact"] = float(gap.mean())
        out[f"{kind.value}_minus_exact_sd"] = float(gap.std())
        out[f"{kind.value}_corr_exact"] = float(torch.corrcoef(pair)[0, 1])
    return out


def run_one(variant: str, seed: int, steps: int, args, state: dict) -> dict:
    torch.manual_seed(seed)
    model = build(variant, args.batch, args.lr, args.group).compile("cpu")
    model.init_from_parent(state)
    counter = EvalCounter(model)
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        dtg.train(model, steps=steps, seed=seed, out=out, progress=False)
        seconds = time.perf_counter() - start
    counter.close()
    figures = evaluate_finetune(model, n=args.n, seed=seed)
    if args.grid:  # 64 of the fine-tuned model's samples beside 64 of the prior's
        torch.manual_seed(seed)
        with torch.no_grad():
            mine, prior = model.sample(64), model.prior.sample(64)
        title = f"{variant}, seed {seed}, {steps} steps (left) and the prior (right)"
        plot_samples(mine, model.ir.message.space, RESULTS / f"{variant}_s{seed}_{steps}.png",
                     reference=prior, title=title)  # fmt: skip
    figures.update(estimate_gap(model, seed=seed))
    figures.update(
        variant=variant, seed=seed, steps=steps, batch=args.batch, lr=args.lr,
        samples=steps * args.batch, net_rows=counter.rows, train_seconds=seconds,
    )  # fmt: skip
    return figures


def cmd_run(args) -> None:
    state = effective_state(load_checkpoint(args.parent, torch.device("cpu")))
    RESULTS.mkdir(parents=True, exist_ok=True)
    for variant in args.variants:
        steps = args.steps
        if args.match_evals and not variant.endswith("trajectory"):
            steps = matched_steps(variant, args.steps)
        for seed in args.seeds:
            path = RESULTS / f"{variant}_s{seed}_{steps}.json"
            if path.exists() and not args.again:
                continue
            figures = run_one(variant, seed, steps, args, state)
            path.write_text(json.dumps(figures, indent=1))
            print(json.dumps({k: figures[k] for k in SHOWN if k in figures}), flush=True)


def cmd_gap(args) -> None:
    """The estimates' gap on the prior's own samples (``prior_gap.json``)."""
    model = dtg.load(ROOT / "examples" / "mdlm_digits.dtg").compile("cpu")
    restore_model(model, load_checkpoint(args.parent, model.device), use_ema=True)
    figures = estimate_gap(model.eval(), n=args.n, seed=0)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "prior_gap.json").write_text(json.dumps(figures, indent=1))
    print(json.dumps(figures, indent=1))


def matched_steps(variant: str, steps: int) -> int:
    """Steps at which ``variant`` spends the net rows its exact-scoring sibling spent in
    ``steps`` (read from that sibling's seed-0 result)."""
    method = variant.split("_", 1)[0]
    exact = json.loads((RESULTS / f"{method}_trajectory_s0_{steps}.json").read_text())
    cheap = json.loads((RESULTS / f"{variant}_s0_{steps}.json").read_text())
    return round(steps * exact["net_rows"] / cheap["net_rows"])


SHOWN = (
    "variant", "seed", "steps", "reward_mean", "fraction_rewarded", "diversity",
    "mmd_to_prior", "net_rows", "train_seconds",
)  # fmt: skip


def _mean_sd(values: list[float]) -> str:
    tensor = torch.tensor(values, dtype=torch.float64)
    sd = float(tensor.std()) if len(values) > 1 else float("nan")
    return f"{float(tensor.mean()):.3f} ± {sd:.3f}" if len(values) > 1 else f"{values[0]:.3f}"


def cmd_table(args) -> None:
    runs = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("*_s*_*.json"))]
    if not runs:
        raise SystemExit(f"no results in {RESULTS}: run `rl_masked.py run` first")
    groups: dict[tuple[str, int], list[dict]] = {}
    for r in runs:
        groups.setdefault((r["variant"], r["steps"]), []).append(r)
    columns = ("reward_mean", "fraction_rewarded", "diversity", "mmd_to_prior")
    lines = [
        "| variant | steps × batch | seeds | E[log r] | fraction even | diversity | MMD to prior "
        "| net rows | train wall | order-free − exact on own samples (diffu_grpo / coupled) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    prior = runs[0]
    lines.append(
        f"| prior (mdlm_digits) | — | — | {prior['prior_reward_mean']:.3f} | "
        f"{prior['prior_fraction_rewarded']:.3f} | {prior['prior_diversity']:.3f} | "
        f"{prior['mmd_prior_to_prior']:.4f} (noise floor) | — | — | — |"
    )
    order = {v: i for i, v in enumerate(VARIANTS)}
    for (variant, steps), rs in sorted(groups.items(), key=lambda kv: (order[kv[0][0]], kv[0][1])):
        cells = [_mean_sd([r[c] for r in rs]) for c in columns]
        gap = " / ".join(
            f"{_mean_sd([r[f'{k}_minus_exact'] for r in rs])} (r = "
            f"{sum(r[f'{k}_corr_exact'] for r in rs) / len(rs):.2f})"
            for k in ("diffu_grpo", "coupled")
        )
        rows = sum(r["net_rows"] for r in rs) / len(rs)
        wall = sum(r["train_seconds"] for r in rs) / len(rs) / 60
        lines.append(
            f"| `{variant}` | {steps} × {rs[0]['batch']} | {len(rs)} | {' | '.join(cells)} | "
            f"{rows / 1e6:.2f} M | {wall:.1f} min | {gap} |"
        )
    print("\n".join(lines))
    if args.plot:
        plot(groups, prior, args.plot)


def plot(groups: dict, prior: dict, path: Path) -> None:
    import matplotlib  # heavy: only for the figure

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # heavy: only for the figure

    figure, axes = plt.subplots(figsize=(6.5, 4.5))
    axes.scatter(
        [prior["prior_diversity"]], [prior["prior_reward_mean"]], marker="*", s=160,
        color="black", label="prior",
    )  # fmt: skip
    markers = {"pg": "o", "rtb": "s"}
    colours = {"trajectory": "tab:blue", "diffu_grpo": "tab:orange", "coupled": "tab:green"}
    fewest = {}  # a variant's fewest steps: equal samples; more (--match-evals): equal net rows
    for variant, steps in groups:
        fewest[variant] = min(steps, fewest.get(variant, steps))
    for (variant, steps), rs in sorted(groups.items()):
        method, scoring = variant.split("_", 1)
        matched = steps > fewest[variant]
        axes.scatter(
            [r["diversity"] for r in rs], [r["reward_mean"] for r in rs],
            marker=markers[method], alpha=0.8, linewidths=1.5,
            facecolors="none" if matched else colours[scoring], edgecolors=colours[scoring],
            label=f"{variant} ({steps} steps{', equal net rows' if matched else ''})",
        )  # fmt: skip
    axes.set_xlabel("diversity (mean pairwise RMS distance, grey levels)")
    axes.set_ylabel("E[log r]  (r = classifier's P(even))")
    axes.set_title("fine-tuning mdlm_digits toward even digits: each point one seed")
    axes.legend(fontsize=7, loc="best")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=130)
    print(f"wrote {path}")


def main() -> None:
    global RESULTS  # --results moves every run's file (tests and trial runs)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--results", type=Path, default=RESULTS, help="results folder")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="fine-tune and evaluate")
    run.add_argument("--parent", type=Path, default=ROOT / "runs/mdlm_digits/checkpoint.pt")
    run.add_argument("--variants", nargs="+", choices=VARIANTS, default=VARIANTS)
    run.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    run.add_argument("--steps", type=int, default=100)
    run.add_argument("--batch", type=int, default=16)
    run.add_argument("--group", type=int, default=8)
    run.add_argument("--lr", type=float, default=1e-4)
    run.add_argument("-n", type=int, default=1000, help="samples per figure")
    run.add_argument("--match-evals", action="store_true",
                     help="order-free variants run the exact sibling's net rows")  # fmt: skip
    run.add_argument("--again", action="store_true", help="redo runs that have a result")
    run.add_argument("--grid", action="store_true", help="also draw 64 samples of each run")
    gap = sub.add_parser("gap", help="the estimates' gap on the prior's own samples")
    gap.add_argument("--parent", type=Path, default=ROOT / "runs/mdlm_digits/checkpoint.pt")
    gap.add_argument("-n", type=int, default=512, help="samples")
    table = sub.add_parser("table", help="markdown table of the results")
    table.add_argument("--plot", type=Path, help="write the reward-vs-diversity plot here")
    args = parser.parse_args()
    RESULTS = args.results
    if args.command in ("run", "gap") and not args.parent.is_file():
        raise SystemExit(f"no prior at {args.parent}: run `dtg train examples/mdlm_digits.dtg`")
    {"run": cmd_run, "gap": cmd_gap, "table": cmd_table}[args.command](args)


if __name__ == "__main__":
    main()

"""Diffusion samplers in dtg: quality against Sendera et al. 2024 and speed against torchgfn.

Four parts (select with ``--parts``), results printed as JSON (and written to ``--out``):

``quality``
    Δlog Z = |log Z − mean w| and Δlog Z_RW = |log Z − logmeanexp w| (K = 2000 trajectories,
    :func:`dtg.runtime.sampler_eval.evaluate_sampler`), mean ± std over seeds, at T = 100 on 25GMM,
    Funnel and Manywell, for trajectory balance (TB), VarGrad and TB + exploration (extra
    generation noise std 0.2 decayed linearly to 0 over the first half of training, as in
    Sendera et al. 2024, App. D), and TB + exploration 0.1 + local search (``tb_expl_ls``:
    ``local_search = true`` at its defaults, gfn-diffusion's settings), next to the published
    values (arXiv 2402.05098, Table 1/C.1, 25,000 iterations, batch 300, 5 seeds). The CPU budget
    is recorded with every figure.
``few_steps``
    T = 10 on 25GMM: fixed destruction and fixed generation variance (``gmm25_tb.dtg`` with
    ``steps T = 10``) against learned generation variance + learned destruction
    (``gmm25_learned.dtg``, destruction at 1/10 of the generation rate), and the same learned model
    with the destruction at the generation rate (the stability ablation); also ``fixed_zero_init``
    and ``NAME@noclip`` (no gradient clip). Reports log Ẑ (ELBO) next to Sendera et al. 2024,
    Fig. 3 (−1.67 fixed, −0.62 learned variance).
``reference``
    torchgfn 2.4.1's TB with its PIS net on 25GMM at the same T (``--ref-steps``), batch,
    iterations and gradient clip: a same-budget reference for the dtg figures.
``speed``
    One TB training iteration (T = 100, batch 300, 25GMM, Adam, σ² = 5) interleaved in one
    process: dtg (``gmm25_tb.dtg``, a 2×64 MLP drift); torchgfn 2.4.1 ``TBGFlowNet`` on its
    ``DiffusionSampling`` environment with (a) the *same* MLP wrapped as its ``pf_module`` and
    (b) its own ``DiffusionPISGradNetForward`` (hidden 64, 2 joint layers); and a hand-written
    plain-PyTorch TB iteration with the same MLP. Median times and median per-round ratios;
    first checks that dtg's TB loss equals the hand-written one from the same random state.

Training mirrors ``dtg.runtime.train``: Adam over ``model.param_groups(lr)``, global gradient-norm
clip 1.0, no warm-up, no EMA. Everything runs on the CPU.

    python benchmarks/samplers.py --quick                          # < 2 min smoke run
    python benchmarks/samplers.py --parts quality --iters 1500 --seeds 2 \\
        --plan "gmm25:tb,vargrad,tb_expl" --out benchmarks/results/samplers.json
    python benchmarks/samplers.py --parts few_steps --few-iters 2000 --out ...
    python benchmarks/samplers.py --parts reference --ref-iters 2000 --out ...
    python benchmarks/samplers.py --parts speed --speed-rounds 40 --out ...
    python benchmarks/samplers.py --markdown benchmarks/results/samplers.json   # the tables
    python benchmarks/samplers.py --merge OTHER.json --out benchmarks/results/samplers.json

With ``--out``, results are merged into the file (existing entries for other targets, methods or
parts are kept; more seeds of the same budget, ``--seed0 N``, join an entry) and the file is
rewritten after every finished run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import platform
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

import dtg

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

#: Sendera et al. 2024 (arXiv 2402.05098), Table 1 / Table C.1: mean ± std over 5 runs,
#: 25,000 iterations, batch 300, PIS architecture, T = 100.
PUBLISHED = {
    "gmm25": {
        "tb": {"delta_log_z": [1.176, 0.109], "delta_log_z_rw": [1.071, 0.112], "w2": [4.83, 0.45]},
        "tb_expl": {
            "delta_log_z": [0.560, 0.302], "delta_log_z_rw": [0.422, 0.320], "w2": [3.61, 1.41]
        },
        "vargrad_expl": {
            "delta_log_z": [0.615, 0.241], "delta_log_z_rw": [0.487, 0.250], "w2": [3.89, 0.85]
        },
        "tb_expl_ls": {
            "delta_log_z": [0.171, 0.013], "delta_log_z_rw": [0.004, 0.011], "w2": [1.25, 0.18]
        },
    },
    "funnel": {
        "tb": {"delta_log_z": [0.690, 0.018], "delta_log_z_rw": [0.239, 0.192], "w2": [22.4, 4.0]},
        "tb_expl": {
            "delta_log_z": [0.749, 0.015], "delta_log_z_rw": [0.226, 0.138], "w2": [21.3, 4.0]
        },
        "vargrad_expl": {
            "delta_log_z": [0.642, 0.010], "delta_log_z_rw": [0.250, 0.112], "w2": [22.1, 4.0]
        },
        "tb_expl_ls": {
            "delta_log_z": [0.653, 0.025], "delta_log_z_rw": [0.285, 0.099], "w2": [21.9, 4.0]
        },
    },
    "manywell": {
        "tb": {"delta_log_z": [4.01, 0.04], "delta_log_z_rw": [2.67, 0.02], "w2": [6.14, 0.02]},
        "tb_expl": {"delta_log_z": [4.01, 0.05], "delta_log_z_rw": [2.68, 0.06], "w2": [6.15, 0.02]},
        "vargrad_expl": {
            "delta_log_z": [4.01, 0.05], "delta_log_z_rw": [2.69, 0.06], "w2": [6.15, 0.02]
        },
        "tb_expl_ls": {
            "delta_log_z": [4.57, 2.13], "delta_log_z_rw": [0.19, 0.29], "w2": [5.66, 0.05]
        },
    },
}  # fmt: skip
PUBLISHED_NOTE = (
    "Sendera et al. 2024 (arXiv 2402.05098) Table 1 / C.1: mean ± std over 5 runs, 25,000 "
    "iterations, batch 300, PIS net (64-wide), T = 100; the paper has no plain VarGrad row "
    "(VarGrad + Expl. is given instead)"
)
#: Sendera et al. 2024, Fig. 3: log Ẑ at T = 10 on 25GMM.
PUBLISHED_FEW_STEPS = {"fixed": -1.67, "learned": -0.62}

FILES = {"gmm25": "gmm25_tb.dtg", "funnel": "funnel_tb.dtg", "manywell": "manywell_tb.dtg"}
METHODS = ("tb", "vargrad", "tb_expl", "vargrad_expl", "tb_expl_ls")
EXPLORE = 0.2  # Sendera et al. 2024, App. D: exploration factor 0.2, decayed over the first half
#: TB + Expl. + LS: gfn-diffusion's command for it uses exploration factor 0.1 (decayed the same
#: way) with local search at its defaults (dtg's ``local_search`` defaults are those values).
EXPLORE_LS = 0.1
METRIC_KEYS = ("delta_log_z", "delta_log_z_rw", "log_z_elbo", "log_z_rw", "eubo", "ess", "w2")
METRIC_KEYS += ("modes_covered", "well_sign_error_max", "well_sign_error_mean")


# ------------------------------------------------------------------------------- model texts


def set_objective(text: str, objective: str) -> str:
    """Replace the ``objective …`` line of a model text."""
    new, count = re.subn(r"(?m)^(\s*)objective\b.*$", lambda m: m.group(1) + objective, text)
    if count != 1:
        raise ValueError("expected exactly one objective line")
    return new


def set_steps(text: str, steps: int) -> str:
    new, count = re.subn(r"(?m)^(\s*)steps\s+T\s*=\s*\d+", rf"\g<1>steps T = {steps}", text)
    if count != 1:
        raise ValueError("expected exactly one 'steps T = …' line")
    return new


def method_text(target: str, method: str, iters: int) -> str:
    """The model text of ``target`` trained by ``method``."""
    text = (EXAMPLES / FILES[target]).read_text()
    explore = f"explore = {EXPLORE}, explore_steps = {max(1, iters // 2)}"
    explore_ls = f"explore = {EXPLORE_LS}, explore_steps = {max(1, iters // 2)}"
    objective = {
        "tb": "objective trajectory_balance(lr_logZ = 0.1)",
        "vargrad": "objective vargrad",
        "tb_expl": f"objective trajectory_balance(lr_logZ = 0.1, {explore})",
        "vargrad_expl": f"objective vargrad({explore})",
        "tb_expl_ls": f"objective trajectory_balance(lr_logZ = 0.1, {explore_ls}, "
        "local_search = true)",
    }[method]
    return set_objective(text, objective)


def few_steps_texts() -> dict[str, str]:
    fixed = set_steps((EXAMPLES / "gmm25_tb.dtg").read_text(), 10)
    learned = (EXAMPLES / "gmm25_learned.dtg").read_text()
    same_rate = re.sub(r"lr_destroy\s*=\s*[0-9.eE+-]+", "lr_destroy = 1e-3", learned)
    if same_rate == learned:
        raise ValueError("gmm25_learned.dtg has no lr_destroy option to vary")
    zero_init = fixed.replace("mlp(hidden = [64, 64])", "mlp(hidden = [64, 64], zero_init = true)")
    if zero_init == fixed:
        raise ValueError("gmm25_tb.dtg's drift is no longer mlp(hidden = [64, 64])")
    variance_only = learned.replace("destroy = joint", "destroy = fixed")
    tlm = learned.replace("destroy = joint", "destroy = tlm")
    if variance_only == learned:
        raise ValueError("gmm25_learned.dtg no longer trains its destruction with destroy = joint")
    return {
        "fixed": fixed,
        "fixed_zero_init": zero_init,
        "learned": learned,
        "learned_same_rate": same_rate,
        "learned_variance": variance_only,  # learned generation variance, the fixed bridge
        "learned_tlm": tlm,  # learned destruction by trajectory likelihood (arXiv 2410.15474)
    }


# ------------------------------------------------------------------------------- training


def train(
    text: str,
    iters: int,
    batch: int,
    lr: float,
    seed: int,
    clip: float = 1.0,
    log_every: int = 100,
    label: str = "",
) -> tuple[Any, dict]:
    """Train a sampler given as model text; returns ``(model, record)``."""
    torch.manual_seed(seed)
    model = dtg.loads(text).compile("cpu")
    optimizer = torch.optim.Adam(model.param_groups(lr))
    params = [p for group in optimizer.param_groups for p in group["params"]]
    trace, nonfinite = [], 0
    start = time.perf_counter()
    for step in range(1, iters + 1):
        loss = model.loss(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(params, clip) if clip > 0 else None
        if not torch.isfinite(loss) or (norm is not None and not torch.isfinite(norm)):
            nonfinite += 1  # skip the update, as a careful loop would; counted in the record
            continue
        optimizer.step()
        if step % log_every == 0 or step == iters:
            point = {"iter": step, "loss": round(float(loss.detach()), 4)}
            point.update({k: round(v, 4) for k, v in model.metrics(None).items()})
            trace.append(point)
            print(f"[{label}] {point}", file=sys.stderr, flush=True)
    seconds = time.perf_counter() - start
    record = {
        "iterations": iters,
        "batch": batch,
        "lr": lr,
        "seed": seed,
        "train_seconds": round(seconds, 1),
        "ms_per_iteration": round(1e3 * seconds / max(1, iters), 1),
        "nonfinite_steps_skipped": nonfinite,
        "trace": trace,
    }
    return model, record


def evaluate(model: Any, k: int, seed: int) -> dict:
    from dtg.runtime.sampler_eval import evaluate_sampler

    start = time.perf_counter()
    metrics = evaluate_sampler(model, k=k, seed=seed)
    metrics = {key: float(value) for key, value in metrics.items()}
    learned = getattr(model.objective, "log_z", None)
    if learned is not None and model.ir.objective.kind.value != "vargrad":
        metrics["learned_log_z"] = float(learned.detach())
    metrics["eval_seconds"] = round(time.perf_counter() - start, 1)
    return metrics


def summarise(runs: list[dict]) -> dict:
    """Mean ± std (population std over seeds; ``None`` with one seed) of each metric."""
    out = {}
    for key in METRIC_KEYS:
        values = [r["metrics"][key] for r in runs if key in r["metrics"]]
        values = [v for v in values if math.isfinite(v)]
        if not values:
            continue
        std = statistics.pstdev(values) if len(values) > 1 else None
        out[key] = {"mean": statistics.fmean(values), "std": std, "n": len(values)}
    return out


def budget_text(iters: int, batch: int, seeds: int) -> str:
    return f"{iters} it × batch {batch}, {seeds} seed{'s' if seeds != 1 else ''}"


# ------------------------------------------------------------------------------- parts


def parse_plan(plan: str) -> list[tuple[str, list[str]]]:
    """``"gmm25:tb,vargrad;funnel:tb"`` → ``[("gmm25", ["tb", "vargrad"]), ("funnel", ["tb"])]``."""
    out = []
    for item in filter(None, (p.strip() for p in plan.split(";"))):
        target, _, methods = item.partition(":")
        target = target.strip()
        if target not in FILES:
            raise SystemExit(f"unknown target {target!r} (targets: {', '.join(FILES)})")
        names = [m.strip() for m in methods.split(",") if m.strip()] or ["tb"]
        for name in names:
            if name not in METHODS:
                raise SystemExit(f"unknown method {name!r} (methods: {', '.join(METHODS)})")
        out.append((target, names))
    return out


def run_quality(args, results: dict, save) -> None:
    part = results.setdefault("quality", {})
    part["published_note"] = PUBLISHED_NOTE
    part["explore"] = {
        "std": EXPLORE,
        "std_tb_expl_ls": EXPLORE_LS,
        "decay": "linear to 0 over the first half of the iterations",
    }
    for target, methods in parse_plan(args.plan):
        for method in methods:
            runs = []
            for seed in range(args.seed0, args.seed0 + args.seeds):
                text = method_text(target, method, args.iters)
                label = f"{target}/{method}/seed{seed}"
                model, record = train(
                    text, args.iters, args.batch, args.lr, seed, args.clip, args.log_every, label
                )
                record["metrics"] = evaluate(model, args.k, seed)
                print(f"[{label}] {record['metrics']}", file=sys.stderr, flush=True)
                runs.append(record)
            add_runs(part, target, method, runs, args.iters, args.batch, args.k)
            save()


def add_runs(
    part: dict, target: str, method: str, runs: list[dict], iters: int, batch: int, k: int
) -> None:
    """Store the runs of one (target, method) in the quality ``part``: more seeds of the same
    budget (a later ``--seed0``, or ``--merge`` of a parallel run) join the runs already saved;
    another budget replaces them."""
    old = part.get(target, {}).get(method)
    if old and old.get("iterations") == iters and old.get("batch") == batch:
        fresh = {r["seed"] for r in runs}
        runs = [r for r in old["runs"] if r["seed"] not in fresh] + runs
        runs.sort(key=lambda r: r["seed"])
    part.setdefault(target, {})[method] = {
        "budget": budget_text(iters, batch, len(runs)),
        "iterations": iters,
        "batch": batch,
        "seeds": [r["seed"] for r in runs],
        "steps_T": 100,
        "k": k,
        "summary": summarise(runs),
        "published": PUBLISHED.get(target, {}).get(method),
        "runs": runs,
    }


def merge_quality(results: dict, other: dict) -> None:
    """Add the quality runs of ``other`` (a results file of a run made in parallel, e.g. another
    ``--seed0``) to ``results``, entry by entry, and its commands to the record."""
    part = results.setdefault("quality", {})
    for target, methods in other.get("quality", {}).items():
        if not isinstance(methods, dict) or target not in FILES:
            continue
        for method, entry in methods.items():
            add_runs(
                part, target, method, entry["runs"], entry["iterations"], entry["batch"],
                entry["k"],
            )  # fmt: skip
    results["meta"].setdefault("commands", []).extend(other.get("meta", {}).get("commands", []))


def run_few_steps(args, results: dict, save) -> None:
    part = results.setdefault("few_steps", {})
    part["published"] = PUBLISHED_FEW_STEPS
    part["published_note"] = (
        "Sendera et al. 2024 (arXiv 2402.05098) Fig. 3, 25GMM, T = 10: log Ẑ with fixed vs learned "
        "generation variance (dtg's 'learned' also learns the destruction, arXiv 2506.01541)"
    )
    texts = few_steps_texts()
    variants = [v.strip() for v in args.few_variants.split(",") if v.strip()]
    for variant in variants:
        base, _, flag = variant.partition("@")  # "fixed@noclip": the same model, no grad clip
        clip = 0.0 if flag == "noclip" else args.clip
        runs = []
        for seed in range(args.seed0, args.seed0 + args.few_seeds):
            label = f"gmm25_T10/{variant}/seed{seed}"
            model, record = train(
                texts[base], args.few_iters, args.batch, args.lr, seed, clip, args.log_every, label
            )
            record["grad_clip"] = clip
            record["metrics"] = evaluate(model, args.k, seed)
            print(f"[{label}] {record['metrics']}", file=sys.stderr, flush=True)
            runs.append(record)
        old = part.get(variant)
        if old and old.get("iterations") == args.few_iters and old.get("batch") == args.batch:
            fresh = {r["seed"] for r in runs}
            runs = sorted(
                [r for r in old["runs"] if r["seed"] not in fresh] + runs, key=lambda r: r["seed"]
            )
        part[variant] = {
            "budget": budget_text(args.few_iters, args.batch, len(runs)),
            "iterations": args.few_iters,
            "batch": args.batch,
            "seeds": [r["seed"] for r in runs],
            "steps_T": 10,
            "objective": re.search(r"(?m)^\s*objective\b.*$", texts[base]).group(0).strip(),
            "grad_clip": clip,
            "summary": summarise(runs),
            "runs": runs,
        }
        save()


# ------------------------------------------------------------------------------- speed


class HandTB:
    """A trajectory-balance iteration written out in plain PyTorch (the same chain as
    ``gmm25_tb.dtg``: x[T] = 0, x[t-1] ~ N(x[t] + f(x[t], t/T)/T, σ²/T), the Brownian bridge
    x[t] ~ N(s x[t-1], σ² s / T) with s = (T − t)/(T − t + 1), log r = gmm25). ``device``: where
    its chain runs (the net's device); ``step(batch, context)`` computes the loss under
    ``context()`` (``torch.autocast`` for bf16 in ``gpu_timings.py``)."""

    def __init__(
        self, net: torch.nn.Module, steps: int, sigma2: float, lr: float, device="cpu"
    ) -> None:
        from dtg.targets import gmm25_log_reward

        self.net, self.steps, self.sigma2, self.device = net, steps, sigma2, device
        self.log_reward = gmm25_log_reward
        self.log_z = torch.nn.Parameter(torch.zeros((), device=device))
        self.optimizer = torch.optim.Adam(
            [{"params": net.parameters(), "lr": lr}, {"params": [self.log_z], "lr": 0.1}]
        )
        self.params = [*net.parameters(), self.log_z]

    def loss(self, batch: int) -> torch.Tensor:
        steps, var = self.steps, self.sigma2 / self.steps
        std, half_log = math.sqrt(var), 0.5 * math.log(2 * math.pi)
        x = torch.zeros(batch, 2, device=self.device)
        log_pf = x.new_zeros(batch)
        log_pb = x.new_zeros(batch)
        for t in range(steps, 0, -1):
            time_ = torch.full((batch,), t / steps, device=self.device)
            mean = x + self.net(x, time_) / steps
            previous = (mean + std * torch.randn_like(mean)).detach()
            log_pf = log_pf + (
                -0.5 * ((previous - mean) / std) ** 2 - math.log(std) - half_log
            ).sum(1)
            s = (steps - t) / (steps - t + 1)
            if s > 0:  # the step into the point x[T] = 0 is deterministic
                b_std = math.sqrt(var * s)
                log_pb = log_pb + (
                    -0.5 * ((x - s * previous) / b_std) ** 2 - math.log(b_std) - half_log
                ).sum(1)
            x = previous
        return ((self.log_z + log_pf - self.log_reward(x) - log_pb) ** 2).mean()

    def step(self, batch: int, context=contextlib.nullcontext) -> float:
        with context():
            loss = self.loss(batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, 1.0)
        self.optimizer.step()
        return float(loss.detach())


class DtgTB:
    def __init__(self, model: Any, lr: float) -> None:
        self.model = model
        self.optimizer = torch.optim.Adam(model.param_groups(lr))
        self.params = [p for g in self.optimizer.param_groups for p in g["params"]]

    def step(self, batch: int, context=contextlib.nullcontext) -> float:
        with context():
            loss = self.model.loss(batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, 1.0)
        self.optimizer.step()
        return float(loss.detach())


class _TimeWrapped(torch.nn.Module):
    """A dtg drift net ``f(x, t/T)`` as a torchgfn ``pf_module`` (input ``[B, d + 1]``, the last
    column torchgfn's forward time in [0, 1], which runs opposite to dtg's level t/T)."""

    def __init__(self, net: torch.nn.Module, dim: int) -> None:
        super().__init__()
        self.net, self.input_dim, self.output_dim = net, dim + 1, dim

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        return self.net(states[..., :-1], 1.0 - states[..., -1])


#: dtg target → (torchgfn 2.4.1 ``DiffusionSampling`` target, dimension, σ² of the reference
#: process as in gfn-diffusion: 5 for 25GMM, 1 for Funnel and Manywell). Their log-rewards agree
#: with dtg's to float32 rounding (``hard_funnel`` is Neal's funnel with x0's std 3, as dtg's).
GFN_TARGETS = {
    "gmm25": ("gmm25_prior", 2, 5.0),
    "funnel": ("hard_funnel", 10, 1.0),
    "manywell": ("many_well", 32, 1.0),
}


class GfnTB:
    """torchgfn 2.4.1: ``TBGFlowNet`` with pinned-Brownian-motion estimators on
    ``DiffusionSampling("gmm25_prior")`` (its tutorial ``train_diffusion_sampler.py``)."""

    def __init__(
        self,
        module: torch.nn.Module,
        steps: int,
        sigma2: float,
        lr: float,
        clip: float = 1.0,
        target: str = "gmm25",
    ) -> None:
        from gfn.estimators import PinnedBrownianMotionBackward, PinnedBrownianMotionForward
        from gfn.gflownet import TBGFlowNet
        from gfn.gym.diffusion_sampling import DiffusionSampling
        from gfn.samplers import Sampler
        from gfn.utils.modules import DiffusionFixedBackwardModule

        sigma = math.sqrt(sigma2)
        name, dim, _ = GFN_TARGETS[target]
        self.env = DiffusionSampling(
            target_str=name,
            target_kwargs={},
            num_discretization_steps=steps,
            device=torch.device("cpu"),
        )
        pf = PinnedBrownianMotionForward(
            s_dim=dim, pf_module=module, sigma=sigma, num_discretization_steps=steps
        )
        pb = PinnedBrownianMotionBackward(
            s_dim=dim,
            pb_module=DiffusionFixedBackwardModule(s_dim=dim),
            sigma=sigma,
            num_discretization_steps=steps,
        )
        self.gflownet = TBGFlowNet(pf=pf, pb=pb, init_logZ=0.0)
        self.sampler = Sampler(estimator=pf)
        self.optimizer = torch.optim.Adam(self.gflownet.pf_pb_parameters(), lr=lr)
        self.optimizer.add_param_group({"params": self.gflownet.logz_parameters(), "lr": 0.1})
        self.params = [p for g in self.optimizer.param_groups for p in g["params"]]
        self.clip = clip

    def step(self, batch: int) -> float:
        trajectories = self.sampler.sample_trajectories(
            self.env, n=batch, save_logprobs=True, save_estimator_outputs=False
        )
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.gflownet.loss(self.env, trajectories, recalculate_all_logprobs=False)
        loss.backward()
        if self.clip > 0:
            torch.nn.utils.clip_grad_norm_(self.params, self.clip)
        self.optimizer.step()
        return float(loss.detach())


def run_speed(args, results: dict, save) -> None:
    steps, batch, sigma2, lr = 100, 300, 5.0, 1e-3
    text = (EXAMPLES / "gmm25_tb.dtg").read_text()
    torch.manual_seed(0)
    model = dtg.loads(text).compile("cpu")
    contenders: dict[str, Any] = {"dtg": DtgTB(model, lr)}
    # The same architecture, freshly built (same init seed) for each framework.
    torch.manual_seed(0)
    hand = HandTB(dtg.loads(text).compile("cpu").nets["drift"], steps, sigma2, lr)
    contenders["plain_pytorch"] = hand
    # Correctness first: from the same random state and the same (initial) weights, the
    # hand-written TB loss must equal dtg's. A batch of 4 (8 normal draws per step): dtg's chain
    # runs in float64 (see docs/samplers.md) and torch's float32 and float64 normal streams only
    # coincide for draws of fewer than 16 numbers.
    # Both at log Z = 0: keep the objective from starting log Z at the batch's estimate.
    model.objective.log_z_started.fill_(True)
    with torch.no_grad():
        torch.manual_seed(123)
        loss_dtg = float(model.loss(4))
        torch.manual_seed(123)
        loss_hand = float(hand.loss(4))
    state_dtype = str(model.trajectory(2).states[0].dtype)
    part: dict[str, Any] = {
        "setup": {
            "target": "gmm25",
            "steps_T": steps,
            "batch": batch,
            "sigma2": sigma2,
            "optimizer": "Adam (lr 1e-3, log Z 0.1), gradient-norm clip 1.0 in every contender",
            "net": "dtg mlp(hidden = [64, 64]), SiLU, 64-dim sinusoidal time embedding",
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "python": platform.python_version(),
            "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
            "rounds": args.speed_rounds,
            "warmup_rounds": args.speed_warmup,
        },
        "loss_agreement": {
            "dtg": loss_dtg,
            "plain_pytorch": loss_hand,
            "relative_difference": abs(loss_dtg - loss_hand) / max(1e-12, abs(loss_hand)),
            "batch": 4,
            "dtg_state_dtype": state_dtype,
        },
    }
    try:
        import gfn  # noqa: F401
        from gfn.utils.modules import DiffusionPISGradNetForward

        torch.manual_seed(0)
        same = _TimeWrapped(dtg.loads(text).compile("cpu").nets["drift"], 2)
        contenders["torchgfn_same_net"] = GfnTB(same, steps, sigma2, lr)
        torch.manual_seed(0)
        pis = DiffusionPISGradNetForward(
            s_dim=2, harmonics_dim=64, t_emb_dim=64, s_emb_dim=64, hidden_dim=64,
            joint_layers=2, zero_init=True,
        )  # fmt: skip
        contenders["torchgfn_pis_net"] = GfnTB(pis, steps, sigma2, lr)
        from importlib.metadata import version

        part["setup"]["torchgfn"] = version("torchgfn")
        part["setup"]["torchgfn_pis_net"] = (
            "DiffusionPISGradNetForward(harmonics 64, t/s embedding 64, hidden 64, 2 joint layers, "
            "zero_init), as in torchgfn's tutorials/examples/train_diffusion_sampler.py"
        )
    except Exception as error:  # noqa: BLE001 - report any failure to build torchgfn in the JSON
        part["torchgfn_error"] = f"{type(error).__name__}: {error}"
    part["setup"]["params"] = {
        name: sum(p.numel() for g in c.optimizer.param_groups for p in g["params"] if p.dim() > 0)
        for name, c in contenders.items()
    }
    names = list(contenders)
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(args.speed_warmup + args.speed_rounds):
        order = names if round_ % 2 == 0 else names[::-1]  # alternate the order: no position bias
        for name in order:
            start = time.perf_counter()
            try:
                contenders[name].step(batch)
            except Exception as error:  # noqa: BLE001
                part[f"{name}_error"] = f"{type(error).__name__}: {error}"
                names = [n for n in names if n != name]
                times.pop(name, None)
                break
            if round_ >= args.speed_warmup:
                times[name].append(time.perf_counter() - start)
    medians = {name: 1e3 * statistics.median(ts) for name, ts in times.items() if ts}
    part["median_ms"] = {name: round(ms, 1) for name, ms in medians.items()}
    part["mean_ms"] = {
        name: round(1e3 * statistics.fmean(ts), 1) for name, ts in times.items() if ts
    }
    ratios = {}
    for other in names:
        if other == "dtg" or other not in times:
            continue
        per_round = [a / b for a, b in zip(times["dtg"], times[other], strict=True)]
        ratios[f"dtg_over_{other}"] = round(statistics.median(per_round), 3)
    part["ratio_median"] = ratios
    part["note"] = (
        "ratio < 1 means dtg is faster; per-round ratios of adjacent (interleaved) iterations, "
        "median over rounds"
    )
    results["speed"] = part
    save()


# ------------------------------------------------------------------------------- reference


def run_reference(args, results: dict, save) -> None:
    """torchgfn 2.4.1's TB with its PIS net (its tutorial's settings) on ``--ref-target`` at the
    same T, batch and iterations as a dtg run: the same-budget reference for dtg's figures."""
    from gfn.utils.modules import DiffusionPISGradNetForward

    from dtg.runtime.sampler_eval import mode_coverage, wasserstein2, well_sign_errors
    from dtg.targets import TARGETS

    steps = args.ref_steps
    iters = args.ref_iters
    target = TARGETS[args.ref_target]
    gfn_name, dim, sigma2 = GFN_TARGETS[args.ref_target]
    runs = []
    for seed in range(args.seed0, args.seed0 + args.few_seeds):
        torch.manual_seed(seed)
        pis = DiffusionPISGradNetForward(
            s_dim=dim, harmonics_dim=64, t_emb_dim=64, s_emb_dim=64, hidden_dim=64,
            joint_layers=2, zero_init=True,
        )  # fmt: skip
        runner = GfnTB(pis, steps, sigma2, args.lr, clip=args.clip, target=args.ref_target)
        # The two log-rewards must agree (the figures compare against dtg's log Z).
        probe = torch.randn(64, dim)
        gap = (runner.env.target.log_reward(probe) - target.log_reward(probe)).abs().max()
        assert float(gap) < 1e-3, f"torchgfn's {gfn_name} is not dtg's {args.ref_target}"
        tag = f"[torchgfn {args.ref_target} T={steps}]"
        trace = []
        start = time.perf_counter()
        for step in range(1, iters + 1):
            loss = runner.step(args.batch)
            if step % args.log_every == 0 or step == iters:
                trace.append({"iter": step, "loss": round(loss, 4)})
                print(f"{tag} {trace[-1]}", file=sys.stderr, flush=True)
        seconds = time.perf_counter() - start
        torch.manual_seed(seed)
        weights, samples = [], []
        with torch.no_grad():
            for chunk in range(0, args.k, 500):
                n = min(500, args.k - chunk)
                tr = runner.sampler.sample_trajectories(runner.env, n=n, save_logprobs=True)
                scores = runner.gflownet.get_scores(tr, recalculate_all_logprobs=False)
                weights.append(-scores)
                samples.append(tr.terminating_states.tensor[:, :-1])
        w = torch.cat(weights).double()
        w = w[torch.isfinite(w)]
        x = torch.cat(samples)
        log_z = target.log_z
        log_z_rw = float(torch.logsumexp(w, 0) - math.log(len(w)))
        metrics = {
            "log_z": log_z,
            "log_z_elbo": float(w.mean()),
            "log_z_rw": log_z_rw,
            "delta_log_z": abs(float(w.mean()) - log_z),
            "delta_log_z_rw": abs(log_z_rw - log_z),
            "learned_log_z": float(runner.gflownet.logZ.detach()),
        }
        if args.ref_target == "gmm25":
            exact = target.sample(args.k, torch.Generator().manual_seed(seed + 1))
            metrics["w2"] = wasserstein2(x[:1000], exact[:1000])
            metrics["modes_covered"] = mode_coverage(x, target.modes, target.mode_radius)[1]
        if args.ref_target == "manywell":
            worst, mean = well_sign_errors(x)
            metrics["well_sign_error_max"], metrics["well_sign_error_mean"] = worst, mean
        print(f"{tag} {metrics}", file=sys.stderr, flush=True)
        runs.append(
            {
                "seed": seed, "iterations": iters, "batch": args.batch,
                "train_seconds": round(seconds, 1), "trace": trace, "metrics": metrics,
            }
        )  # fmt: skip
    key = f"torchgfn_tb_pis_T{steps}" + ("_noclip" if args.clip <= 0 else "")
    if args.ref_target != "gmm25":
        key = f"{args.ref_target}_{key}"
    results.setdefault("reference", {})[key] = {
        "what": "torchgfn 2.4.1 TBGFlowNet + PinnedBrownianMotion estimators + "
        f"DiffusionPISGradNetForward(64, 2 joint layers, zero_init) on DiffusionSampling"
        f"('{gfn_name}'), sigma^2 = {sigma2:g}, lr 1e-3, log Z lr 0.1, same gradient clip as dtg",
        "budget": budget_text(iters, args.batch, len(runs)),
        "steps_T": steps,
        "grad_clip": args.clip,
        "summary": summarise(runs),
        "runs": runs,
    }
    save()


# ------------------------------------------------------------------------------- tables


def _pm(summary: dict, key: str, digits: int = 3) -> str:
    item = summary.get(key)
    if not item:
        return "–"
    text = f"{item['mean']:.{digits}f}"
    return text + (f" ± {item['std']:.{digits}f}" if item.get("std") is not None else "")


def markdown(results: dict) -> str:
    """The figures of a results file as Markdown tables (for docs/samplers.md)."""
    names = {
        "tb": "TB",
        "vargrad": "VarGrad",
        "tb_expl": "TB + Expl.",
        "vargrad_expl": "VarGrad + Expl.",
        "tb_expl_ls": "TB + Expl. + LS",
    }
    lines = []
    quality = results.get("quality", {})
    if any(t in quality for t in FILES):
        lines += [
            "| target | method | Δlog Z | Δlog Z_RW | EUBO − log Z | W2 | budget (dtg) "
            "| published Δlog Z | published Δlog Z_RW |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for target in FILES:
            for method, entry in quality.get(target, {}).items():
                summ, pub = entry["summary"], entry.get("published") or {}
                log_z = entry["runs"][0]["metrics"].get("log_z", 0.0)
                eubo = summ.get("eubo")
                gap = f"{eubo['mean'] - log_z:.2f}" if eubo else "–"
                published = [
                    f"{pub[k][0]} ± {pub[k][1]}" if k in pub else "–"
                    for k in ("delta_log_z", "delta_log_z_rw")
                ]
                lines.append(
                    f"| {target} | {names.get(method, method)} | {_pm(summ, 'delta_log_z')} "
                    f"| {_pm(summ, 'delta_log_z_rw')} | {gap} | {_pm(summ, 'w2', 2)} "
                    f"| {entry['budget']} | {published[0]} | {published[1]} |"
                )
        lines.append("")
    few = results.get("few_steps", {})
    rows = [(k, v) for k, v in few.items() if isinstance(v, dict) and "summary" in v]
    ref = [(k, v) for k, v in results.get("reference", {}).items() if "summary" in v]
    if rows or ref:
        pub = few.get("published", PUBLISHED_FEW_STEPS)
        lines += [
            "| T = 10, 25GMM | log Ẑ (ELBO) | log Ẑ_RW | W2 | budget | published log Ẑ |",
            "|---|---|---|---|---|---|",
        ]
        for key, entry in rows + ref:
            summ = entry["summary"]
            published = pub.get(key.split("@")[0], "–") if key in ("fixed", "learned") else "–"
            lines.append(
                f"| {key} | {_pm(summ, 'log_z_elbo')} | {_pm(summ, 'log_z_rw')} "
                f"| {_pm(summ, 'w2', 2)} | {entry['budget']} | {published} |"
            )
        lines.append("")
    speed = results.get("speed")
    if speed and "median_ms" in speed:
        lines += ["| TB iteration (T = 100, batch 300) | median ms | dtg ÷ this |", "|---|---|---|"]
        for name, ms in speed["median_ms"].items():
            ratio = speed["ratio_median"].get(f"dtg_over_{name}", 1.0 if name == "dtg" else None)
            lines.append(f"| {name} | {ms} | {ratio if ratio is not None else '–'} |")
        lines.append("")
    return "\n".join(lines)


# ------------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a < 2 minute smoke run of all parts")
    parser.add_argument("--parts", default="quality,few_steps,reference,speed")
    parser.add_argument(
        "--plan",
        default="gmm25:tb,vargrad,tb_expl;funnel:tb;manywell:tb",
        help="targets and methods of the quality part, 'target:m1,m2;target:m'",
    )
    parser.add_argument("--iters", type=int, default=2000, help="quality: training iterations")
    parser.add_argument("--seeds", type=int, default=1, help="quality: seeds per method")
    parser.add_argument("--seed0", type=int, default=0)
    parser.add_argument("--batch", type=int, default=300)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--clip", type=float, default=1.0, help="gradient-norm clip (0 = off)")
    parser.add_argument("--k", type=int, default=2000, help="evaluation trajectories")
    parser.add_argument("--few-iters", type=int, default=3000)
    parser.add_argument("--few-seeds", type=int, default=1)
    parser.add_argument("--few-variants", default="fixed,learned,learned_same_rate")
    parser.add_argument("--ref-steps", type=int, default=10, help="reference: T")
    parser.add_argument("--ref-iters", type=int, default=2000, help="reference: iterations")
    parser.add_argument("--ref-target", choices=tuple(GFN_TARGETS), default="gmm25")
    parser.add_argument("--speed-rounds", type=int, default=40)
    parser.add_argument("--speed-warmup", type=int, default=3)
    parser.add_argument("--log-every", type=int, default=250)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (0 = torch's default); 1 is fastest "
        "for these small nets on a shared 2-core machine",
    )
    parser.add_argument("--out", type=Path, default=None, help="merge results into this JSON")
    parser.add_argument(
        "--markdown", type=Path, default=None, help="print the tables of a results file and exit"
    )
    parser.add_argument(
        "--merge",
        type=Path,
        default=None,
        help="add the quality runs of this results file (a parallel run) to --out and exit",
    )
    args = parser.parse_args()
    if args.markdown is not None:
        print(markdown(json.loads(args.markdown.read_text())))
        return
    if args.quick:
        args.plan = "gmm25:tb,vargrad,tb_expl;funnel:tb;manywell:tb"
        args.iters, args.seeds, args.k = 20, 1, 300
        args.few_iters, args.few_variants = 40, "fixed,learned,learned_same_rate"
        args.ref_iters = 40
        args.speed_rounds, args.speed_warmup, args.log_every = 3, 1, 10
    if args.threads:
        torch.set_num_threads(args.threads)

    results: dict[str, Any] = {}
    if args.out is not None and args.out.exists():
        results = json.loads(args.out.read_text())
    results.setdefault("meta", {})
    if args.merge is not None:
        if args.out is None:
            raise SystemExit("--merge needs --out (the file to merge into)")
        results.setdefault("meta", {})
        merge_quality(results, json.loads(args.merge.read_text()))
        args.out.write_text(json.dumps(results, indent=2) + "\n")
        print(markdown(results))
        return
    results["meta"].setdefault("commands", []).append(
        "python benchmarks/samplers.py " + " ".join(sys.argv[1:])
    )
    results["meta"].update(
        {
            "quick": bool(args.quick),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "device": "cpu",
            "training": "Adam over model.param_groups(lr), global grad-norm clip "
            f"{args.clip}, lr {args.lr}, no warm-up/EMA",
        }
    )

    def save() -> None:
        if args.out is not None:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            tmp = args.out.with_suffix(".tmp")
            tmp.write_text(json.dumps(results, indent=2) + "\n")
            tmp.replace(args.out)

    # Import everything dtg imports lazily now, so that a long run is not affected by later edits.
    import dtg.backends.torch  # noqa: F401
    import dtg.objectives  # noqa: F401
    import dtg.runtime.sampler_eval  # noqa: F401
    import dtg.targets.densities  # noqa: F401

    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    start = time.perf_counter()
    for part in parts:
        {
            "quality": run_quality,
            "few_steps": run_few_steps,
            "speed": run_speed,
            "reference": run_reference,
        }[part](args, results, save)
    results["meta"]["last_wall_seconds"] = round(time.perf_counter() - start, 1)
    save()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

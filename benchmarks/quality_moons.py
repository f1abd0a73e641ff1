"""Sample quality of ddpm_moons after a fixed budget: dtg against a hand-written DDPM.

Both sides start from the *same* initial net weights (one copy each), take the same number of
Adam steps with the same learning rate, batch size and gradient clipping on the same training
split, and are scored the same way: MMD (RBF, median heuristic) and sliced-Wasserstein distance
between 2,000 samples and the held-out split. The hand-written side is Ho et al. (2020),
Algorithms 1 and 2 (with the x̂₀ clamp of their code), written out here with its own schedule tables (numpy, float64) and its own
sampler; it shares nothing with dtg but the net's architecture and initial weights. Sample
metrics at n = 2,000 vary by several times between draws of the same net, so each is averaged
over ``--draws`` draws, and the held-out ε-MSE (fixed levels and noise) is reported beside them.
Prints JSON.

    python benchmarks/quality_moons.py                       # 20k steps, seeds 0-4
    python benchmarks/quality_moons.py --steps 2000 --seeds 0
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import statistics
import time
from pathlib import Path

import numpy as np
import torch

import dtg
from dtg.runtime.checkpoint import load_checkpoint, restore_model
from dtg.runtime.evaluate import mmd_rbf, sliced_wasserstein
from dtg.runtime.train import DATA_SPLIT_SEED

ROOT = Path(__file__).resolve().parent.parent
CLIP = 4.0  # ddpm_moons.dtg's Guess(…, clip = 4)


def cosine_tables(steps: int) -> dict[str, torch.Tensor]:
    """ddpm_moons.dtg's schedule by hand: ᾱ cosine (Nichol & Dhariwal 2021), β clipped at 0.999."""
    t = np.arange(steps + 1, dtype=np.float64)
    abar_cos = np.cos(np.pi / 2 * (t / steps + 0.008) / 1.008) ** 2
    beta = np.zeros(steps + 1)
    beta[1:] = np.minimum(1 - abar_cos[1:] / abar_cos[:-1], 0.999)
    alpha = 1 - beta
    alphabar = np.cumprod(alpha)  # alphabar[0] = 1: level 0 is the data
    posterior_var = np.zeros(steps + 1)
    posterior_var[1:] = beta[1:] * (1 - alphabar[:-1]) / (1 - alphabar[1:])
    return {
        k: torch.tensor(v, dtype=torch.float32)
        for k, v in dict(beta=beta, alpha=alpha, alphabar=alphabar, var=posterior_var).items()
    }


def hand_train(net, tables, train_x, steps, batch, lr, clip, seed, ema) -> tuple[float, dict]:
    """Algorithm 1: ε-MSE at a uniform level per example, with an exponential moving average
    of the weights (decay ``ema``, as in Ho et al.'s code); returns seconds and the averages."""
    generator = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    average = {name: p.detach().clone() for name, p in net.named_parameters()}
    T = len(tables["beta"]) - 1
    start = time.perf_counter()
    for _ in range(steps):
        x0 = train_x[torch.randint(len(train_x), (batch,), generator=generator)]
        t = torch.randint(1, T + 1, (batch,), generator=generator)
        noise = torch.randn(x0.shape, generator=generator)
        abar = tables["alphabar"][t][:, None]
        xt = abar.sqrt() * x0 + (1 - abar).sqrt() * noise
        loss = ((net(xt, t.float() / T) - noise) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), clip)
        opt.step()
        with torch.no_grad():
            for name, p in net.named_parameters():
                average[name].mul_(ema).add_(p.detach(), alpha=1 - ema)
    return time.perf_counter() - start, average


@torch.no_grad()
def hand_sample(net, tables, n: int, seed: int, clip: float) -> torch.Tensor:
    """Algorithm 2 in its posterior-mean form, as in Ho et al.'s code: x̂₀ from ε, clamped to
    ±``clip`` (ddpm_moons.dtg's ``clip = 4``), then the mean of q(x[t-1] | x[t], x̂₀) plus
    √β̃_t noise; the last step returns the mean."""
    generator = torch.Generator().manual_seed(seed)
    T = len(tables["beta"]) - 1
    x = torch.randn(n, 2, generator=generator)
    for t in range(T, 0, -1):
        eps = net(x, torch.full((n,), t / T))
        beta, alpha, abar = (tables[k][t] for k in ("beta", "alpha", "alphabar"))
        abar_prev = tables["alphabar"][t - 1]
        x0 = ((x - (1 - abar).sqrt() * eps) / abar.sqrt()).clamp(-clip, clip)
        x = (abar_prev.sqrt() * beta * x0 + alpha.sqrt() * (1 - abar_prev) * x) / (1 - abar)
        if t > 1:
            x = x + tables["var"][t].sqrt() * torch.randn(x.shape, generator=generator)
    return x


def score(samples: torch.Tensor, test: torch.Tensor, seed: int) -> dict[str, float]:
    reference = test[: len(samples)]
    generator = torch.Generator().manual_seed(seed)
    return {
        "mmd": mmd_rbf(samples, reference),
        "sliced_w": sliced_wasserstein(samples, reference, generator=generator),
    }


def mean_scores(draws: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.fmean(d[key] for d in draws) for key in draws[0]}


@torch.no_grad()
def held_out_mse(net, tables, test: torch.Tensor, repeats: int = 10) -> float:
    """The ε-MSE on the held-out split, every example at ``repeats`` levels, with fixed levels
    and noise (the same for both sides): the training objective without its sampling noise."""
    generator = torch.Generator().manual_seed(12345)
    T = len(tables["beta"]) - 1
    x0 = test.repeat(repeats, 1)
    t = torch.randint(1, T + 1, (len(x0),), generator=generator)
    noise = torch.randn(x0.shape, generator=generator)
    abar = tables["alphabar"][t][:, None]
    xt = abar.sqrt() * x0 + (1 - abar).sqrt() * noise
    return float(((net(xt, t.float() / T) - noise) ** 2).mean())


def run_seed(seed: int, steps: int, n: int, draws: int) -> dict:
    torch.manual_seed(seed)  # a seed-dependent initial net, copied to both sides
    model = dtg.load(ROOT / "examples" / "ddpm_moons.dtg").compile("cpu")
    hand_net = copy.deepcopy(model.nets["eps"])
    opts = model.ir.train
    batch, lr = int(opts.get("batch", 512)), float(opts.get("lr", 2e-3))
    data = model.dataset(DATA_SPLIT_SEED)
    test = data.test[:n]
    tables = cosine_tables(model.ir.steps)

    run = dtg.train(
        model,
        steps=steps,
        out=Path("/tmp") / f"dtg-quality-moons-{seed}",
        seed=seed,
        progress=False,
    )
    # Score the EMA weights, as dtg sample / dtg eval do.
    restore_model(model, load_checkpoint(run.checkpoint, torch.device("cpu")), use_ema=True)
    dtg_draws = []
    for draw in range(draws):
        torch.manual_seed(1000 * seed + draw)
        dtg_draws.append(score(model.sample(n), test, draw))
    dtg_scores = mean_scores(dtg_draws)
    dtg_scores["held_out_mse"] = held_out_mse(model.nets["eps"], tables, data.test)
    dtg_scores["train_seconds"] = run.seconds

    ema = float(opts.get("ema", 0.0))
    seconds, average = hand_train(hand_net, tables, data.train, steps, batch, lr, 1.0, seed, ema)
    hand_net.load_state_dict(average, strict=False)
    hand_draws = [
        score(hand_sample(hand_net, tables, n, 1000 * seed + draw, CLIP), test, draw)
        for draw in range(draws)
    ]
    hand_scores = mean_scores(hand_draws)
    hand_scores["held_out_mse"] = held_out_mse(hand_net, tables, data.test)
    hand_scores["train_seconds"] = seconds

    floor = []
    for draw in range(draws):
        order = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(draw))
        floor.append(score(data.train[order[:n]], test, draw))
    return {"dtg": dtg_scores, "hand": hand_scores, "train_split": mean_scores(floor)}


def summarise(rows: list[dict], side: str, key: str) -> dict[str, float]:
    values = [row[side][key] for row in rows]
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": statistics.fmean(values), "std": spread}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("-n", type=int, default=2000, help="samples scored per draw")
    parser.add_argument("--draws", type=int, default=5, help="sample draws averaged per net")
    args = parser.parse_args()
    rows = [run_seed(seed, args.steps, args.n, args.draws) for seed in args.seeds]
    out = {
        "steps": args.steps,
        "seeds": args.seeds,
        "samples": args.n,
        "draws": args.draws,
        "per_seed": rows,
    }
    for side in ("dtg", "hand", "train_split"):
        keys = ("mmd", "sliced_w") + (("held_out_mse",) if side != "train_split" else ())
        out[side] = {key: summarise(rows, side, key) for key in keys}
    out["mmd_ratio_dtg_over_hand"] = out["dtg"]["mmd"]["mean"] / out["hand"]["mmd"]["mean"]
    out["sliced_w_ratio_dtg_over_hand"] = (
        out["dtg"]["sliced_w"]["mean"] / out["hand"]["sliced_w"]["mean"]
    )
    out["held_out_mse_ratio_dtg_over_hand"] = (
        out["dtg"]["held_out_mse"]["mean"] / out["hand"]["held_out_mse"]["mean"]
    )
    out["note"] = (
        "each figure: the mean over --draws sample draws of n points, then mean ± std over "
        "seeds; train_split: the same metrics for training points (the floor at this n)"
    )
    if not math.isfinite(out["mmd_ratio_dtg_over_hand"]):
        raise SystemExit("non-finite figures")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

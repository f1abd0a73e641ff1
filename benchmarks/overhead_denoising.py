"""Overhead of a dtg denoising step against the same step hand-written in plain PyTorch.

Both steps use the *same* net object, batch, schedule tables and objective (ε-MSE at one
uniformly sampled level per example, Adam); they are interleaved in one process and the median
time ratio is reported (goal ≤ 1.05). Prints JSON.

    python benchmarks/overhead_denoising.py            # ddpm_moons (batch 512), digits (batch 256),
                                                       # the digits U-Net (batch 128)
    python benchmarks/overhead_denoising.py --quick
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

import dtg

ROOT = Path(__file__).resolve().parent.parent

DIGITS = """
model ddpm_digits_bench {
  data x : real[64] ~ digits()
  steps T = 100
  schedule beta(t) = 1e-4 + (0.02 - 1e-4) * (t - 1) / (T - 1)
  net eps : (real[64], time) -> real[64] = mlp(hidden = [256, 256, 256])
  destroy  x[t]   ~ Normal(sqrt(1 - beta(t)) * x[t-1], sqrt(beta(t)))
  generate x[T]   ~ Normal(0, 1)
  generate x[t-1] ~ Guess(x[t], eps)
  objective denoising
}
"""


def hand_written_step(net, mean, sigma, steps, x0, opt) -> float:
    """The DDPM ε-MSE step written out by hand (Ho et al. 2020, Algorithm 1)."""
    t = torch.randint(1, steps + 1, (x0.shape[0],))
    noise = torch.randn_like(x0)
    shape = (-1,) + (1,) * (x0.dim() - 1)  # [B] levels broadcast over [B, *shape]
    xt = mean[t].reshape(shape) * x0 + sigma[t].reshape(shape) * noise
    loss = ((net(xt, t.float() / steps) - noise) ** 2).mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return float(loss.detach())


def dtg_step(model, x0, opt) -> float:
    loss = model.loss(x0)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return float(loss.detach())


def measure(model, batch: int, repeats: int, warmup: int = 20) -> dict:
    torch.manual_seed(0)
    data = model.dataset().train
    x0 = data[torch.randint(len(data), (batch,))]
    net = model.nets["eps"]
    mean, sigma = model.destroy.mean, model.destroy.sigma
    steps = model.ir.steps
    opt_dtg = torch.optim.Adam(model.param_groups(1e-4))
    opt_hand = torch.optim.Adam(net.parameters(), lr=1e-4)
    for _ in range(warmup):
        dtg_step(model, x0, opt_dtg)
        hand_written_step(net, mean, sigma, steps, x0, opt_hand)
    ratios, dtg_times, hand_times = [], [], []
    for _ in range(repeats):
        start = time.perf_counter()
        dtg_step(model, x0, opt_dtg)
        middle = time.perf_counter()
        hand_written_step(net, mean, sigma, steps, x0, opt_hand)
        end = time.perf_counter()
        dtg_times.append(middle - start)
        hand_times.append(end - middle)
        ratios.append((middle - start) / (end - middle))
    return {
        "batch": batch,
        "repeats": repeats,
        "dtg_ms": 1e3 * statistics.median(dtg_times),
        "hand_ms": 1e3 * statistics.median(hand_times),
        "ratio_median": statistics.median(ratios),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    repeats = 30 if args.quick else 300
    torch.set_num_threads(max(1, torch.get_num_threads()))
    results = {}
    moons = dtg.load(ROOT / "examples" / "ddpm_moons.dtg").compile("cpu")
    results["ddpm_moons"] = measure(moons, 512, repeats)
    digits = dtg.loads(DIGITS, file=str(ROOT / "digits_bench.dtg")).compile("cpu")
    results["ddpm_digits"] = measure(digits, 256, repeats // 2)
    unet = dtg.load(ROOT / "examples" / "ddpm_digits_unet.dtg").compile("cpu")
    results["ddpm_digits_unet"] = measure(unet, 128, repeats // 4, warmup=5)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

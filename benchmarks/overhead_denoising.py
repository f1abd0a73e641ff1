"""Overhead of a dtg denoising step against the same step hand-written in plain PyTorch.

Both steps use the *same* net object, batch, schedule tables and objective (ε-MSE at one
uniformly sampled level per example, Adam); they are interleaved in one process and the median
time ratio is reported (goal ≤ 1.05). Prints JSON.

    python benchmarks/overhead_denoising.py            # ddpm_moons (batch 512), digits (batch 256),
                                                       # the digits U-Net (batch 128)
    python benchmarks/overhead_denoising.py --quick
    python benchmarks/overhead_denoising.py --device cuda --precision bf16 \\
        --digits-width 512 --digits-batch 1024        # a GPU-sized digits row

On CUDA the device is synchronised around each timed step; ``--precision bf16`` runs the
hand-written step under ``torch.autocast`` and dtg's under its training loop's bf16 (see
``benchmarks/timing.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import time
from pathlib import Path

import torch
from timing import PRECISIONS, dtg_precision, hand_precision, resolve_device, synchronize

import dtg

ROOT = Path(__file__).resolve().parent.parent

DIGITS = """
model ddpm_digits_bench {
  data x : real[64] ~ digits()
  steps T = 100
  schedule beta(t) = 1e-4 + (0.02 - 1e-4) * (t - 1) / (T - 1)
  net eps : (real[64], time) -> real[64] = mlp(hidden = [WIDTH, WIDTH, WIDTH])
  destroy  x[t]   ~ Normal(sqrt(1 - beta(t)) * x[t-1], sqrt(beta(t)))
  generate x[T]   ~ Normal(0, 1)
  generate x[t-1] ~ Guess(x[t], eps)
  objective denoising
}
"""


def hand_written_step(net, mean, sigma, steps, x0, opt, context=contextlib.nullcontext) -> float:
    """The DDPM ε-MSE step written out by hand (Ho et al. 2020, Algorithm 1).

    :param context: a factory of the context the loss is computed under (autocast for bf16).
    :returns: the loss.
    """
    t = torch.randint(1, steps + 1, (x0.shape[0],), device=x0.device)
    noise = torch.randn_like(x0)
    shape = (-1,) + (1,) * (x0.dim() - 1)  # [B] levels broadcast over [B, *shape]
    with context():
        xt = mean[t].reshape(shape) * x0 + sigma[t].reshape(shape) * noise
        loss = ((net(xt, t.float() / steps) - noise) ** 2).mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return float(loss.detach())


def dtg_step(model, x0, opt, context=contextlib.nullcontext) -> float:
    """One dtg training step (Adam) on ``x0``. :returns: the loss."""
    with context():
        loss = model.loss(x0)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return float(loss.detach())


def measure(model, batch: int, repeats: int, warmup: int = 20, precision: str = "fp32") -> dict:
    """Interleaved dtg and hand-written steps on one batch, on the model's device.

    :returns: median milliseconds of each and the median per-pair ratio.
    """
    torch.manual_seed(0)
    data = model.dataset().train
    x0 = data[torch.randint(len(data), (batch,))].to(model.device)
    device = torch.device(model.device)
    ours, note = dtg_precision(model, device, precision)
    theirs = hand_precision(device, precision)
    net = model.nets["eps"]
    mean, sigma = model.destroy.mean, model.destroy.sigma
    steps = model.ir.steps
    opt_dtg = torch.optim.Adam(model.param_groups(1e-4))
    opt_hand = torch.optim.Adam(net.parameters(), lr=1e-4)
    for _ in range(warmup):
        dtg_step(model, x0, opt_dtg, ours)
        hand_written_step(net, mean, sigma, steps, x0, opt_hand, theirs)
    ratios, dtg_times, hand_times = [], [], []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        dtg_step(model, x0, opt_dtg, ours)
        synchronize(device)
        middle = time.perf_counter()
        hand_written_step(net, mean, sigma, steps, x0, opt_hand, theirs)
        synchronize(device)
        end = time.perf_counter()
        dtg_times.append(middle - start)
        hand_times.append(end - middle)
        ratios.append((middle - start) / (end - middle))
    out = {
        "batch": batch,
        "repeats": repeats,
        "dtg_ms": 1e3 * statistics.median(dtg_times),
        "hand_ms": 1e3 * statistics.median(hand_times),
        "ratio_median": statistics.median(ratios),
    }
    if device.type != "cpu" or precision != "fp32":  # the CPU fp32 output stays as it was
        out.update(device=str(device), precision=precision, dtg_precision=note)
    return out


def digits_text(width: int = 256) -> str:
    """:returns: the digits DDPM benchmark model with an MLP of three ``width``-wide layers."""
    return DIGITS.replace("WIDTH", str(width))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32")
    parser.add_argument("--digits-width", type=int, default=256, help="the digits MLP's width")
    parser.add_argument("--digits-batch", type=int, default=256)
    args = parser.parse_args()
    if args.digits_width < 1 or args.digits_batch < 1:
        parser.error("--digits-width and --digits-batch must be positive")
    device = str(resolve_device(args.device))
    repeats = 30 if args.quick else 300
    torch.set_num_threads(max(1, torch.get_num_threads()))
    results = {}
    moons = dtg.load(ROOT / "examples" / "ddpm_moons.dtg").compile(device)
    results["ddpm_moons"] = measure(moons, 512, repeats, precision=args.precision)
    text = digits_text(args.digits_width)
    digits = dtg.loads(text, file=str(ROOT / "digits_bench.dtg")).compile(device)
    results["ddpm_digits"] = measure(
        digits, args.digits_batch, repeats // 2, precision=args.precision
    )
    unet = dtg.load(ROOT / "examples" / "ddpm_digits_unet.dtg").compile(device)
    results["ddpm_digits_unet"] = measure(
        unet, 128, repeats // 4, warmup=5, precision=args.precision
    )
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

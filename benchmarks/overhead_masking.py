"""Overhead of a dtg masking step against the same step hand-written in plain PyTorch, and the
held-out bits/token of the three discrete digit models after one small training budget.

Overhead: ``examples/mdlm_digits.dtg`` (transformer 128×4, T = 64), batch 256 by default. Both
steps use the *same* net object and batch and the same objective (MDLM's exact discrete-time
ELBO: antithetic levels, x[t] from the closed-form marginal, weight (α_{t-1} − α_t)/(1 − α_t)
times the masked cross-entropy, times T; Adam). They are interleaved in one process (the order
alternates) and the median per-pair time ratio is reported (goal ≤ 1.05). Before timing, both
losses are computed from the same random state and must agree.

The same comparison is repeated with a tiny net (``transformer(width = 16, depth = 1, heads = 2)``),
where the framework's own cost is a larger share of the step.

Quality (``--quality``): ``mdlm_digits``, ``autoregressive_digits`` and ``uniform_digits``, each
with the same net (``transformer(width = 64, depth = 2, heads = 4)``; causal for the
autoregressive model, as in its example, so that a step scores all 64 positions there too) and
budget (``--train-steps`` Adam steps, batch 64, lr 1e-3, seed 0), then the negative ELBO on the
held-out digits in bits per token (nelbo / (64 ln 2); log2 17 ≈ 4.09 is the uniform model).

    python benchmarks/overhead_masking.py                  # batch 256
    python benchmarks/overhead_masking.py --batch 32 --repeats 10
    python benchmarks/overhead_masking.py --quality --train-steps 600
    python benchmarks/overhead_masking.py --device cuda --precision bf16   # on a GPU

On CUDA the device is synchronised around each timed step; ``--precision bf16`` runs the
hand-written step under ``torch.autocast`` and dtg's under its training loop's bf16 (see
``benchmarks/timing.py``); the two losses are compared in fp32 only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import re
import statistics
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from timing import PRECISIONS, dtg_precision, hand_precision, resolve_device, synchronize

import dtg

ROOT = Path(__file__).resolve().parent.parent
NET = "transformer(width = 64, depth = 2, heads = 4)"
SMALL = "transformer(width = 16, depth = 1, heads = 2)"


class HandMasking:
    """MDLM's discrete-time masking step for ``alpha(t) = 1 - t/T``, written out by hand."""

    def __init__(self, net: torch.nn.Module, steps: int, vocab: int, device="cpu") -> None:
        self.net, self.steps, self.vocab = net, steps, vocab
        alpha = 1.0 - np.arange(steps + 1) / steps
        weight = np.zeros(steps + 1)
        weight[1:] = (alpha[:-1] - alpha[1:]) / (1.0 - alpha[1:])
        self.alpha = torch.tensor(alpha, dtype=torch.float32, device=device)
        self.weight = torch.tensor(weight, dtype=torch.float32, device=device)

    def loss(self, x0: torch.Tensor) -> torch.Tensor:
        batch, steps, device = x0.shape[0], self.steps, x0.device
        u = torch.rand((), device=device)
        t = 1 + torch.floor(steps * ((u + torch.arange(batch, device=device) / batch) % 1.0)).long()
        masked = torch.rand(x0.shape, device=device) >= self.alpha[t][:, None]
        xt = torch.where(masked, self.vocab, x0)
        logits = self.net(xt, t.float() / steps)
        ce = F.cross_entropy(logits.reshape(-1, self.vocab), x0.reshape(-1), reduction="none")
        ce = (ce.view_as(x0) * masked).sum(1)
        return (steps * self.weight[t] * ce).mean()


def step(loss_fn, x0: torch.Tensor, optimizer, context=contextlib.nullcontext) -> float:
    """One Adam step of ``loss_fn`` on ``x0`` under ``context()``. :returns: the loss."""
    with context():
        loss = loss_fn(x0)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return float(loss.detach())


def overhead(
    batch: int,
    repeats: int,
    warmup: int,
    net_text: str | None = None,
    device: str = "cpu",
    precision: str = "fp32",
) -> dict:
    """Interleaved dtg and hand-written masking steps on one batch on ``device``.

    :returns: median milliseconds of each, the median per-pair ratio, the agreeing losses.
    """
    torch.manual_seed(0)
    path = ROOT / "examples" / "mdlm_digits.dtg"
    text = path.read_text()
    if net_text is not None:
        text = re.sub(r"= transformer\([^)]*\)", f"= {net_text}", text)
    model = dtg.loads(text, file=str(path)).compile(device)
    data = model.dataset().train
    x0 = data[torch.randint(len(data), (batch,))].to(model.device)
    net = model.nets["logits"]
    hand = HandMasking(net, model.ir.steps, model.ir.message.space.vocab, model.device)
    dev = torch.device(model.device)
    ours_ctx, note = dtg_precision(model, dev, precision)
    theirs_ctx = hand_precision(dev, precision)
    with torch.no_grad():
        torch.manual_seed(1)
        ours = float(model.loss(x0))
        torch.manual_seed(1)
        theirs = float(hand.loss(x0))
    assert math.isclose(ours, theirs, rel_tol=1e-5 if dev.type == "cpu" else 1e-4), (ours, theirs)
    opt_dtg = torch.optim.Adam(model.param_groups(1e-4))
    opt_hand = torch.optim.Adam(net.parameters(), lr=1e-4)
    for _ in range(warmup):
        step(model.loss, x0, opt_dtg, ours_ctx)
        step(hand.loss, x0, opt_hand, theirs_ctx)
    ratios, dtg_times, hand_times = [], [], []
    for i in range(repeats):
        order = [("dtg", model.loss, opt_dtg, ours_ctx), ("hand", hand.loss, opt_hand, theirs_ctx)]
        times = {}
        for name, fn, opt, context in order if i % 2 == 0 else order[::-1]:
            synchronize(dev)
            start = time.perf_counter()
            step(fn, x0, opt, context)
            synchronize(dev)
            times[name] = time.perf_counter() - start
        dtg_times.append(times["dtg"])
        hand_times.append(times["hand"])
        ratios.append(times["dtg"] / times["hand"])
    extra = {}
    if dev.type != "cpu" or precision != "fp32":  # the CPU fp32 output stays as it was
        extra = {"device": str(dev), "precision": precision, "dtg_precision": note}
    return {
        **extra,
        "model": "mdlm_digits",
        "net": net_text or "as in the example",
        "batch": batch,
        "repeats": repeats,
        "threads": torch.get_num_threads(),
        "losses_agree": [ours, theirs],
        "dtg_ms": 1e3 * statistics.median(dtg_times),
        "hand_ms": 1e3 * statistics.median(hand_times),
        "ratio_median": statistics.median(ratios),
    }


def bits_per_token(model, test: torch.Tensor, repeats: int = 2) -> float:
    with torch.no_grad():
        nelbo = torch.stack([model.nelbo(test) for _ in range(repeats)]).mean()
    return float(nelbo) / (test.shape[1] * math.log(2))


def quality(train_steps: int, batch: int = 64, lr: float = 1e-3, seed: int = 0) -> dict:
    out = {}
    for name in ("mdlm_digits", "autoregressive_digits", "uniform_digits"):
        path = ROOT / "examples" / f"{name}.dtg"
        text = path.read_text()
        net = NET[:-1] + ", causal = true)" if "causal = true" in text else NET
        text = re.sub(r"= transformer\([^)]*\)", f"= {net}", text)
        torch.manual_seed(seed)
        model = dtg.loads(text, file=str(path)).compile("cpu")
        data = model.dataset()
        batches = data.batches(batch, torch.Generator().manual_seed(seed))
        optimizer = torch.optim.Adam(model.param_groups(lr))
        start = time.perf_counter()
        for _ in range(train_steps):
            step(model.loss, next(batches), optimizer)
        seconds = time.perf_counter() - start
        torch.manual_seed(seed)
        out[name] = {
            "bits_per_token": bits_per_token(model, data.test),
            "train_seconds": seconds,
            "test_examples": int(data.test.shape[0]),
        }
        out[name]["net"] = net
    return {"budget": {"steps": train_steps, "batch": batch, "lr": lr, "net": NET}, **out}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--quality", action="store_true", help="also train and evaluate")
    parser.add_argument("--train-steps", type=int, default=600)
    parser.add_argument("--skip-overhead", action="store_true")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda (the overhead)")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32")
    args = parser.parse_args()
    if args.batch < 1 or args.repeats < 1 or args.warmup < 0:
        parser.error("--batch and --repeats must be positive, --warmup not negative")
    device = str(resolve_device(args.device))
    if args.threads:
        torch.set_num_threads(args.threads)
    results = {}
    if not args.skip_overhead:
        run = {"device": device, "precision": args.precision}
        results["overhead"] = overhead(args.batch, args.repeats, args.warmup, **run)
        # The same step with a tiny net exposes the framework's own cost more sharply.
        results["overhead_small_net"] = overhead(
            args.batch, args.repeats, args.warmup, SMALL, **run
        )
    if args.quality:
        results["quality"] = quality(args.train_steps)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

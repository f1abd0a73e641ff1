"""One SVI step through dtg's Pyro lowering vs a naive hand-written Pyro program vs ``denoising``.

Model: ``examples/ddpm_moons.dtg`` with ``T = 50``, batch 512. Three steps, interleaved in one
process, each with its own copy of the same initial net and its own Adam:

* ``lowering``: ``SVI(*model.pyro(), pyro.optim.Adam, Trace_ELBO).step(x0)`` — one batch plate
  around the whole chain, vectorised sites, ``validate_args=False`` distributions;
* ``naive``: the same model and guide written by hand as a typical first Pyro program — one
  Python-loop iteration per level, a new ``pyro.plate`` per level (no plate reuse), tables indexed
  as tensors, default validation;
* ``denoising``: dtg's own training step (``model.loss`` + ``torch.optim.Adam``): one level per
  example, no chain, for scale.

Prints JSON with the median time of each and the medians of the per-repeat ratios, for the
example's net (compute-bound) and for a tiny net (the Pyro program's own per-level cost).

    python benchmarks/pyro_lowering.py [--repeats 40] [--threads N]
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from pathlib import Path

import pyro
import pyro.distributions as dist
import torch
from pyro.infer import SVI, Trace_ELBO

import dtg

ROOT = Path(__file__).resolve().parent.parent


def naive_program(net: torch.nn.Module, destroy, steps: int):
    """DDPM (ε-prediction, posterior variance, β_1 decoder) as a hand-written Pyro model/guide."""
    mean, sigma, beta = destroy.mean, destroy.sigma, destroy.beta
    post_x0, post_xt, post_var, a, s = (
        destroy.post_x0, destroy.post_xt, destroy.post_var, destroy.a, destroy.s
    )  # fmt: skip

    def model(data):
        pyro.module("naive_eps", net)
        batch = data.shape[0]
        with pyro.plate(f"batch_{steps}", batch):
            x = pyro.sample(f"x_{steps}", dist.Normal(torch.zeros(batch, 2), 1.0).to_event(1))
        for t in range(steps, 0, -1):
            with pyro.plate(f"batch_{t - 1}", batch):
                eps = net(x, torch.full((batch,), t / steps))
                x0 = (x - sigma[t] * eps) / mean[t]
                loc = post_x0[t] * x0 + post_xt[t] * x
                var = post_var[t] if t > 1 else beta[t]
                obs = data if t == 1 else None
                x = pyro.sample(f"x_{t - 1}", dist.Normal(loc, var.sqrt()).to_event(1), obs=obs)

    def guide(data):
        x = data
        for t in range(1, steps + 1):
            with pyro.plate(f"batch_{t}", data.shape[0]):
                x = pyro.sample(f"x_{t}", dist.Normal(a[t] * x, s[t]).to_event(1))

    return model, guide


def timed(step) -> float:
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


def measure(hidden: str, repeats: int, warmup: int) -> dict:
    """Interleaved step times for ddpm_moons (T = 50, batch 512) with ``mlp(hidden = …)``."""
    source = (ROOT / "examples" / "ddpm_moons.dtg").read_text().replace("T = 100", "T = 50")
    source = source.replace("[128, 128, 128]", hidden)
    torch.manual_seed(0)
    dtg_model = dtg.loads(source, file=str(ROOT / "examples" / "bench.dtg")).compile("cpu")
    lowered = copy.deepcopy(dtg_model)  # the lowering trains its own copy of the same net
    naive_net = copy.deepcopy(dtg_model.nets["eps"])
    data = dtg_model.dataset().train
    x0 = data[torch.randint(len(data), (512,))]

    pyro.clear_param_store()
    elbo = Trace_ELBO(max_plate_nesting=1)
    svi_lowering = SVI(*lowered.pyro(), pyro.optim.Adam({"lr": 1e-4}), elbo)
    naive = naive_program(naive_net, dtg_model.destroy, dtg_model.ir.steps)
    svi_naive = SVI(*naive, pyro.optim.Adam({"lr": 1e-4}), Trace_ELBO())
    opt = torch.optim.Adam(dtg_model.param_groups(1e-4))

    def denoising_step() -> None:
        loss = dtg_model.loss(x0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    steps = {
        "lowering": lambda: svi_lowering.step(x0),
        "naive": lambda: svi_naive.step(x0),
        "denoising": denoising_step,
    }
    for _ in range(warmup):
        for step in steps.values():
            step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):  # interleaved
        for name, step in steps.items():
            times[name].append(timed(step))
    ratio = {
        other: statistics.median(
            a / b for a, b in zip(times["lowering"], times[other], strict=True)
        )
        for other in ("naive", "denoising")
    }
    return {
        "model": f"ddpm_moons, T = 50, batch 512, mlp(hidden = {hidden})",
        "repeats": repeats,
        "ms_median": {name: 1e3 * statistics.median(values) for name, values in times.items()},
        "lowering_over_naive": ratio["naive"],
        "lowering_over_denoising": ratio["denoising"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's)"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    results = {
        "threads": torch.get_num_threads(),
        # The example's net: the step is dominated by 2 × 50 net passes (compute-bound).
        "ddpm_moons": measure("[128, 128, 128]", args.repeats, args.warmup),
        # A tiny net: what is left is the per-level cost of the Pyro program itself.
        "ddpm_moons_tiny_net": measure("[16]", args.repeats, args.warmup),
    }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

"""The image example (issue 24): the digits as ``real[1, 8, 8]`` with a U-Net, trained from the CLI,
its samples scored by the built-in digits classifier against held-out data — ancestral sampling
(all T levels) and respaced DDIM with 10 levels (η = 0 and η = 1) on the same score.

    OMP_NUM_THREADS=1 python benchmarks/image_digits.py --out runs/digits_unet
    python benchmarks/image_digits.py --out runs/digits_unet --eval-only

Prints JSON: for each sampler, the class-histogram total variation to the data, the mean
classifier confidence of samples and of data, and the sampling wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

import dtg
from dtg.runtime.checkpoint import load_checkpoint, restore_model
from dtg.runtime.ddim import ddim_sample
from dtg.runtime.loop import DATA_SPLIT_SEED
from dtg.runtime.sample_quality import digits_figures

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "ddpm_digits_unet.dtg"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "digits_unet")
    parser.add_argument("--eval-only", action="store_true")
    parser.add_argument("-n", type=int, default=2000)
    args = parser.parse_args()
    if not args.eval_only:
        env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        cli = [sys.executable, "-m", "dtg", "train", str(EXAMPLE), "--out", str(args.out)]
        start = time.time()
        subprocess.run([*cli, "--force", "--no-progress"], check=True, env=env)
        print(f"trained in {time.time() - start:.0f} s", file=sys.stderr)
    model = dtg.load(EXAMPLE).compile("cpu")
    content = load_checkpoint(args.out / "checkpoint.pt", model.device)
    restore_model(model, content, use_ema=True)
    model.eval()
    test = model.dataset(DATA_SPLIT_SEED).test
    results = {"step": int(content["step"]), "samples": args.n}
    samplers = {
        "ancestral_50": lambda: model.sample(args.n),
        "ddim_10_eta0": lambda: ddim_sample(model, args.n, 10, 0.0),
        "ddim_10_eta1": lambda: ddim_sample(model, args.n, 10, 1.0),
    }
    for name, draw in samplers.items():
        torch.manual_seed(0)
        start = time.perf_counter()
        with torch.no_grad():
            samples = draw()
        seconds = time.perf_counter() - start
        figures = digits_figures(samples.reshape(args.n, 64), test.reshape(len(test), 64), None)
        results[name] = {**figures, "sampling_seconds": seconds}
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()

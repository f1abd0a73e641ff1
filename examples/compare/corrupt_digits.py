"""Write corrupted copies of the held-out digits, for `dtg score --data … --reference test`.

    python examples/compare/corrupt_digits.py runs/corrupted

writes ``noisy.npy`` (a quarter of each image's pixels redrawn uniformly from the 17 grey
levels), ``inverted.npy`` (16 − x) and ``shifted.npy`` (each image moved two columns right,
wrapping around): token arrays ``[359, 64]`` of the held-out split, for the token models; and
each as ``NAME_real.npy``, the grey levels scaled as ``digits()`` scales real pixels
(p/8 − 1, in [−1, 1]), for the VAE. A data file must hold values of the model's data space.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import dtg
from dtg.runtime.loop import DATA_SPLIT_SEED

HERE = Path(__file__).resolve().parent


def main(out: Path) -> None:
    model = dtg.load(HERE / "masked.dtg").compile("cpu")
    test = model.dataset(DATA_SPLIT_SEED).test.numpy()  # [359, 64] grey levels 0 … 16
    rng = np.random.default_rng(0)
    noisy = test.copy()
    redraw = rng.random(test.shape) < 0.25
    noisy[redraw] = rng.integers(0, 17, size=int(redraw.sum()))
    shifted = np.roll(test.reshape(-1, 8, 8), 2, axis=2).reshape(-1, 64)
    out.mkdir(parents=True, exist_ok=True)
    for name, rows in (("noisy", noisy), ("inverted", 16 - test), ("shifted", shifted)):
        np.save(out / f"{name}.npy", rows.astype(np.int64))
        np.save(out / f"{name}_real.npy", (rows / 8.0 - 1.0).astype(np.float32))
        print(f"wrote {out / name}.npy and {name}_real.npy {rows.shape}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("runs/corrupted"))

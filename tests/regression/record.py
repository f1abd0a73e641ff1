"""The before/after regression record of every example (issue 17): compute it, or write it.

For each ``examples/*.dtg`` at a fixed seed, on the CPU, in float32, on one thread:

1. ``losses``: the losses of the first :data:`STEPS` steps of ``dtg.train`` (its warm-up,
   clipping and data stream included) with the batch overridden to :data:`BATCH`;
2. ``weights``: the compiled model's ``state_dict()`` after those steps (what a checkpoint
   holds), summarised per tensor (see :func:`summarise`);
3. ``sample``: ``m.sample(SAMPLES)`` after training (in eval mode), from a fixed torch seed;
4. ``elbo``: Pyro's ``Trace_ELBO(num_particles=1).loss`` of ``m.pyro()`` at those weights on a
   fixed batch of as many rows (the first rows of the training data; fixed standard normal rows
   for a sampler), from a fixed Pyro seed; ``null`` with ``elbo_error`` when the lowering
   refuses the model.

The slowest examples use smaller sizes (:data:`BATCH_FOR`, :data:`SAMPLES_FOR`).

A child (``model A extends B``) starts from the freshly initialised parent at the same seed,
passed through ``init_from_parent`` as a ``--init`` checkpoint would be.

Write the record (only from the pre-refactor commit, or for a reviewed change of numbers; see
README.md)::

    cd <checkout> && PYTHONPATH=<checkout> OMP_NUM_THREADS=1 python tests/regression/record.py \\
        --out tests/regression/record.json

Everything that touches the dtg API sits in the small functions under "The dtg surface", so a
refactor that renames something adapts one place.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyro
import torch
from pyro.infer import Trace_ELBO

import dtg

__all__ = [
    "SEED",
    "BATCH",
    "STEPS",
    "SAMPLES",
    "PROJECTIONS",
    "PROJECTION_SEED",
    "record_example",
    "summarise",
    "projections",
    "main",
]

SEED = 0
STEPS = 3
#: The train batch (data rows, or trajectories for a sampler), overriding each ``train { }``.
BATCH = 8
#: Rows sampled, and rows of the fixed batch the Pyro ELBO is evaluated on.
SAMPLES = 8
#: Smaller sizes where the defaults are too slow for the default test suite on a busy 2-core
#: CPU. The three 64-position transformers over 64 levels take ~0.15 s of CPU per sampled or
#: scored row (sample and ELBO: 2 rows each). The RTB fine-tuning of one of them samples and
#: scores whole trajectories with gradients, ~1.3 s of CPU per trajectory per step: train batch
#: 1 (so its first loss is exactly 0 — log Z starts at the batch's mean residual — and steps 2
#: and 3 carry the check), and no sample or ELBO (0 rows): its generation chain and Pyro
#: lowering are mdlm_digits' (other weights; the reward factor is rtb_even_digits').
BATCH_FOR = {"rtb_mdlm_even_digits": 1}
SAMPLES_FOR = {
    "autoregressive_digits": 2,
    "mdlm_digits": 2,
    "uniform_digits": 2,
    "rtb_mdlm_even_digits": 0,
    "hyper_ar_digits": 2,
    "hyper_block_digits": 2,
    "hyper_flat_digits": 2,
    "hyper_hybrid_digits": 2,
    "hybrid_noise_digits": 2,
    "random_order_digits": 2,
    "learned_order_digits": 2,
}
#: Random projections per weight tensor, and the seed of their vectors (see :func:`projections`).
PROJECTIONS, PROJECTION_SEED = 8, 17_2024


# ------------------------------------------------------------------ the dtg surface
def _warm_caches() -> None:
    """Load what dtg loads lazily on first use and which draws from the global torch generator
    (the digits classifier builds its net before loading its cached weights), so that every
    example sees the same random stream whatever ran before it in the process."""
    from dtg.classifier import digits_classifier  # the one private helper used (one place)

    digits_classifier("cpu")


def _parent_name(path: Path) -> str | None:
    """The parent named by ``model NAME extends PARENT`` in the file, if any."""
    found = re.search(r"^\s*model\s+\w+\s+extends\s+(\w+)", path.read_text(), re.MULTILINE)
    return found.group(1) if found else None


def compile_example(path: Path) -> Any:
    """Compile an example on the CPU at :data:`SEED`; a child starts from its parent, freshly
    initialised at the same seed and loaded through ``init_from_parent``.

    :param path: the ``.dtg`` file (its parent, if any, is the sibling ``PARENT.dtg``).
    :returns: the compiled model.
    """
    parent = _parent_name(path)
    state = None
    if parent is not None:
        torch.manual_seed(SEED)
        state = dtg.load(path.parent / f"{parent}.dtg").compile("cpu").state_dict()
    torch.manual_seed(SEED)
    model = dtg.load(path).compile("cpu")
    if state is not None:
        model.init_from_parent(state)
    return model


def train_steps(model: Any, batch: int) -> list[float]:
    """Run :data:`STEPS` steps of the ordinary training loop at :data:`SEED`.

    :returns: the loss of each step.
    """
    with tempfile.TemporaryDirectory(prefix="dtg-regression-") as out:
        run = dtg.train(model, steps=STEPS, batch=batch, seed=SEED, out=out, progress=False)
    return [float(x) for x in run.losses]


def elbo_batch(model: Any, like: torch.Tensor) -> torch.Tensor:
    """The fixed batch the ELBO is evaluated on: as many rows as ``like`` has, the first
    training rows of the model's data, or for a sampler (no data) standard normal rows.

    :param like: a sample of the model (for the number of rows and the sampler's shape).
    """
    data = model.dataset(0)
    if data is not None:
        return data.train[: like.shape[0]]
    generator = torch.Generator().manual_seed(SEED + 2)
    return torch.randn(tuple(like.shape), generator=generator)


def pyro_elbo(model: Any, batch: torch.Tensor) -> float:
    """``Trace_ELBO(num_particles=1).loss`` of the model's Pyro lowering on ``batch`` (the
    negative ELBO summed over the batch, nats) from a fixed Pyro seed."""
    pyro.clear_param_store()
    try:
        model_fn, guide_fn = model.pyro()
        pyro.set_rng_seed(SEED + 3)
        return float(
            Trace_ELBO(num_particles=1, max_plate_nesting=1).loss(model_fn, guide_fn, batch)
        )
    finally:
        pyro.clear_param_store()


# ------------------------------------------------------------------ summaries
@functools.lru_cache(maxsize=4)
def projections(size: int) -> np.ndarray:
    """The projection vectors for a tensor of ``size`` elements: ``[PROJECTIONS, size]``
    standard normal, from a generator seeded by :data:`PROJECTION_SEED` and the size."""
    return np.random.default_rng([PROJECTION_SEED, size]).standard_normal((PROJECTIONS, size))


def summarise(tensor: torch.Tensor) -> dict[str, Any]:
    """A small fingerprint of a tensor: shape, dtype, sha256 of its bytes, and in float64 its
    sum, sum of squares and :data:`PROJECTIONS` Gaussian projections."""
    array = tensor.detach().cpu().contiguous().numpy()
    flat = array.astype(np.float64).ravel()
    return {
        "shape": list(array.shape),
        "dtype": str(array.dtype),
        "sha256": hashlib.sha256(array.tobytes()).hexdigest(),
        "sum": float(flat.sum()),
        "sumsq": float(np.dot(flat, flat)),
        "proj": [float(x) for x in projections(flat.size) @ flat] if flat.size else [],
    }


def _array(tensor: torch.Tensor) -> dict[str, Any]:
    array = tensor.detach().cpu().contiguous().numpy()
    return {"shape": list(array.shape), "dtype": str(array.dtype), "values": array.ravel().tolist()}


def record_example(path: Path) -> dict[str, Any]:
    """Compute the record of one example (see the module docstring).

    :param path: the example's ``.dtg`` file.
    :returns: a JSON-ready dict: ``losses``, ``weights``, ``sample``, ``elbo``, ``batch``, …
    """
    _warm_caches()
    torch.set_num_threads(1)  # sums split across threads round differently
    name = path.stem
    batch = BATCH_FOR.get(name, BATCH)
    model = compile_example(path)
    losses = train_steps(model, batch)
    weights = {key: summarise(value) for key, value in model.state_dict().items()}
    entry: dict[str, Any] = {
        "source_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "batch": batch,
        "losses": losses,
        "weights": weights,
        "sample": None,
        "elbo": None,
        "elbo_error": "not recorded (see SAMPLES_FOR in record.py)",
    }
    rows = SAMPLES_FOR.get(name, SAMPLES)
    if rows == 0:
        return entry
    model.eval()
    torch.manual_seed(SEED + 1)
    sample = model.sample(rows)
    entry["sample"] = _array(sample)
    try:
        entry["elbo"] = pyro_elbo(model, elbo_batch(model, sample))
        del entry["elbo_error"]
    except Exception as error:  # noqa: BLE001 - a model the Pyro lowering refuses is recorded so
        entry["elbo_error"] = f"{type(error).__name__}: {error}"
    return entry


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="the record to write (JSON)")
    parser.add_argument(
        "--examples",
        default=str(Path(dtg.__file__).resolve().parent.parent / "examples"),
        help="the examples folder (default: the one beside the dtg being imported)",
    )
    args = parser.parse_args(argv)
    print(f"dtg from {dtg.__file__}", file=sys.stderr)
    examples = sorted(Path(args.examples).glob("*.dtg"))
    record: dict[str, Any] = {
        "about": "tests/regression/README.md; written by tests/regression/record.py",
        "torch": torch.__version__,
        "pyro": pyro.__version__,
        "examples": {},
    }
    for path in examples:
        start = time.perf_counter()
        record["examples"][path.stem] = entry = record_example(path)
        note = f"  (elbo: {entry['elbo_error']})" if entry["elbo"] is None else ""
        print(f"{path.stem:24s} {time.perf_counter() - start:6.2f} s{note}", file=sys.stderr)
    Path(args.out).write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {args.out}: {Path(args.out).stat().st_size / 1e3:.0f} kB", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

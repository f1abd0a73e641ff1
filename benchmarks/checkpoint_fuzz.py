"""Checkpoint-schema fuzz (issue 18): every leaf of a denoising, a masking and a TB checkpoint,
replaced by at least six kinds of wrong value, through ``dtg sample``, ``dtg train --resume`` (one
more step) and ``dtg train --init``, in process (``dtg.cli.main``). Prints a JSON summary.

The checkpoints are trained for 2 steps (batch 8) from ``examples/ddpm_moons.dtg`` (denoising,
with EMA weights), ``examples/mdlm_digits.dtg`` (masking; its transformer cut to width 32,
depth 1 and T to 16, so that each run takes a fraction of a second: the leaves are of the same
kinds) and ``examples/gmm25_tb.dtg`` (trajectory balance: a second optimizer group for log Z).
The tree of each is walked (dicts, lists, tensors; a list of more than 16 numbers is one leaf,
plus its first and last items) and each leaf is replaced, one at a time, by a value of each kind
that fits the leaf's type (:func:`kinds`): another type, a list, another shape, empty, NaN,
negative, huge, another dtype, ``None`` … Each top-level field is also deleted once. The
checkpoint is saved with ``torch.save`` and run through the three commands.

A case **fails** if the command exits 3, prints "internal error" or a traceback, refuses without
naming the field (the top-level field and the leaf's own name must be in the message), exits 0
although :func:`verdict` says the value breaks the schema where the command reads it, refuses a
value :func:`verdict` says must be accepted, or ``dtg sample`` exits 0 having written NaN or
infinite samples. :func:`verdict` states the schema independently of dtg's code (it is the
documented format, docs/checkpoints.md); where the outcome may go either way (new but finite
weights may overflow, a learning rate the optimizer overwrites) it says ``either``.

    OMP_NUM_THREADS=1 python benchmarks/checkpoint_fuzz.py \\
        --out benchmarks/results/checkpoint_fuzz.json          # about 20 minutes on one core
    python benchmarks/checkpoint_fuzz.py --limit 40            # a smoke run: 40 cases per model
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import math
import random
import re
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch

import dtg
import dtg.cli
import dtg.program
from dtg.runtime.train_options import OptionError, coerce_option

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = ("sample", "resume", "init")
#: The buffers training changes (denoising's loss history, TB's log Z flag, step and replay).
TRAINING_BUFFERS = {"history", "history_count", "log_z_started", "step", "replay_x", "replay_count"}
SHA = "0123456789abcdef" * 4


def models(folder: Path) -> dict[str, Path]:
    """The three programs, written into ``folder``."""
    masking = (ROOT / "examples/mdlm_digits.dtg").read_text()
    masking = masking.replace(
        "width = 128, depth = 4, heads = 4", "width = 32, depth = 1, heads = 4"
    )
    masking = masking.replace("steps T = 64", "steps T = 16")
    assert "depth = 1" in masking and "T = 16" in masking
    texts = {
        "denoising": (ROOT / "examples/ddpm_moons.dtg").read_text(),
        "masking": masking,
        "tb": (ROOT / "examples/gmm25_tb.dtg").read_text(),
    }
    paths = {}
    for name, text in texts.items():
        paths[name] = folder / f"{name}.dtg"
        paths[name].write_text(text)
    return paths


def run(argv: list[str]) -> tuple[int, str]:
    """``dtg ARGV`` in process: ``(exit status, stdout + stderr)``."""
    out = io.StringIO()
    with (
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(out),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        try:
            code = dtg.cli.main(argv)
        except SystemExit as stop:  # argparse
            code = stop.code if isinstance(stop.code, int) else 2
    return code, out.getvalue()


# ----------------------------------------------------------------------------- the tree
def leaves(value: Any, path: tuple = ()) -> list[tuple]:
    """Every leaf path of a checkpoint (a long list of numbers is a leaf, and so are its ends)."""
    if isinstance(value, dict) and value:
        return [p for key, item in value.items() for p in leaves(item, (*path, key))]
    if isinstance(value, (list, tuple)) and value:
        if len(value) > 16 and all(isinstance(v, (int, float)) for v in value):
            return [path, (*path, 0), (*path, len(value) - 1)]
        return [p for i, item in enumerate(value) for p in leaves(item, (*path, i))]
    return [path]


def get(tree: Any, path: tuple) -> Any:
    for key in path:
        tree = tree[key]
    return tree


def put(tree: Any, path: tuple, value: Any) -> Any:
    """A copy of ``tree`` (containers only) with ``path`` set to ``value``."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(tree, dict):
        return {**tree, head: put(tree[head], rest, value)}
    items = list(tree)
    items[head] = put(items[head], rest, value)
    return type(tree)(items) if isinstance(tree, tuple) else items


def name(path: tuple) -> str:
    """The leaf as the schema names fields: ``model['nets.eps.0.weight']``, ``rng.python[1]``."""
    text = str(path[0])
    for i, key in enumerate(path[1:]):
        if isinstance(key, int):
            text += f"[{key}]"
        elif i == 0 and path[0] in ("model", "ema"):
            text += f"[{key!r}]"
        else:
            text += f".{key}"
    return text


# ----------------------------------------------------------------------------- wrong values
def kinds(value: Any) -> dict[str, Any]:
    """At least six wrong values for a leaf, by its type."""
    if isinstance(value, torch.Tensor):
        floating = value.is_floating_point()
        shape = (value.shape[0] + 1, *value.shape[1:]) if value.dim() else (2,)
        return {
            "other type": "abc",
            "list": value.tolist() if value.numel() < 100 else [0.0] * 3,
            "wrong shape": torch.zeros(shape, dtype=value.dtype),
            "empty": torch.zeros((0,), dtype=value.dtype),
            "nan": torch.full(value.shape, math.nan),
            "negative": -(value.abs() + 1) if floating else torch.full(value.shape, -1),
            "huge": torch.full(value.shape, 3e38 if floating else 2**62, dtype=value.dtype)
            if value.dtype not in (torch.uint8, torch.bool)
            else torch.full(
                value.shape, 255 if value.dtype == torch.uint8 else 1, dtype=value.dtype
            ),
            "other dtype": value.double() if floating else value.float(),
        }
    if isinstance(value, bool):
        return {"other type": "abc", "number": 5, "none": None, "flipped": not value, "list": [],
                "nan": math.nan}  # fmt: skip
    if isinstance(value, int):
        return {"other type": "abc", "fraction": 1.5, "negative": -5, "huge": 2**70,
                "giant": 10**5000, "none": None, "bool": True, "list": []}  # fmt: skip
    if isinstance(value, float):
        return {"other type": "abc", "nan": math.nan, "negative": -1.0, "huge": 1e300,
                "inf": math.inf, "none": None, "list": [], "bool": True}  # fmt: skip
    if isinstance(value, str):
        return {"other type": 5, "empty": "", "huge": "x" * 100_000, "other text": "zzz",
                "none": None, "list": [], "sha-like": SHA}  # fmt: skip
    if value is None:
        return {"other type": "abc", "number": 5, "list": [], "dict": {}, "tensor": torch.zeros(3),
                "nan": math.nan}  # fmt: skip
    if isinstance(value, (list, tuple)):  # a long list of numbers, or an empty one
        if not value:
            return {"other type": "abc", "none": None, "strings": ["abc"],
                    "short state": [torch.zeros(5, dtype=torch.uint8)],
                    "float state": [torch.zeros(16)], "state": [torch.zeros(16, dtype=torch.uint8)],
                    "dict": {}}  # fmt: skip
        return {"other type": "abc", "none": None, "empty": [], "short": list(value[:-1]),
                "negative": [-1, *value[1:]], "huge": [2**40, *value[1:]],
                "floats": [float(v) for v in value]}  # fmt: skip
    raise TypeError(type(value))


# ----------------------------------------------------------------------------- the schema
def number_ok(value: Any, low: float = -math.inf) -> bool:
    """A finite float, or an int of less than 64 bits (not a bool), ≥ ``low``."""
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and (isinstance(value, float) or abs(value) < 2**63)
        and math.isfinite(value)
        and value >= low
    )


def verdict(content: dict, path: tuple, value: Any, command: str, facts: dict) -> str:
    """``refuse``, ``accept`` or ``either``: what the documented schema says of ``value`` at
    ``path`` for ``command`` (``facts``: the model's parameter names and its trainable ones)."""
    field, original = path[0], get(content, path)
    if field in ("format", "source", "source_sha256"):
        return "refuse"
    if field == "format_version":
        return "accept" if value in (1, 2) and type(value) is int else "refuse"
    if field in ("dtg_version", "file"):
        return "accept" if isinstance(value, str) else "refuse"
    if field == "model_name":  # another model's checkpoint: only --init takes it (issue 19)
        ok = isinstance(value, str) and re.fullmatch(r"[A-Za-z_]\w*", value, re.ASCII)
        return "accept" if ok and (value == original or command == "init") else "refuse"
    if field == "program_sha256":  # the sha256 of the field 'program' (recorded)
        ok = (
            isinstance(value, str)
            and value == hashlib.sha256(content["program"].encode()).hexdigest()
        )
        return "accept" if ok else "refuse"
    if field == "program":  # optional, or the text program_sha256 hashes
        ok = value is None or (isinstance(value, str) and value == original)
        return "accept" if ok else "refuse"
    if field == "elapsed":
        return "accept" if number_ok(value, 0) else "refuse"
    if field == "step":
        adam = max(float(e["step"]) for e in content["optimizer"]["state"].values())
        ok = type(value) is int and adam <= value <= content["train_options"]["steps"]
        return "accept" if ok else "refuse"
    if field == "train_options":
        return _option(content, path[1], value)
    if field in ("rng", "data_generator"):
        return _rng(path, value)
    if field == "optimizer":
        return _optimizer(content, path, original, value, command)
    return _weights(content, path, original, value, command, facts)


def _option(content: dict, key: str, value: Any) -> str:
    if not number_ok(value):
        return "refuse"
    try:
        checked = coerce_option(key, value)
    except OptionError:
        return "refuse"
    if checked != value or type(checked) is not type(value):
        return "refuse"
    if key == "steps" and value < content["step"]:
        return "refuse"
    if key == "ema" and (value > 0) != (content["ema"] is not None):
        return "refuse"
    return "either"  # an option may make training fail (NaN) or slow


def _rng(path: tuple, value: Any) -> str:
    where = path[1:]
    if where == ("cuda",):  # on a CPU machine a well-formed CUDA state is not used
        ok = (
            isinstance(value, list)
            and all(isinstance(v, torch.Tensor) for v in value)
            and all(v.dtype == torch.uint8 and v.shape == (16,) for v in value)
        )
        return "accept" if ok else "refuse"
    if where == ("numpy", "cached"):
        return "accept" if number_ok(value) else "refuse"
    if where == ("python", 2):
        return "accept" if value is None or number_ok(value) else "refuse"
    return "refuse"  # every wrong value of a generator state, a key, pos, has_gauss, version


def _optimizer(content: dict, path: tuple, original: Any, value: Any, command: str) -> str:
    if path[1] == "param_groups":
        key = path[3]
        if key == "params":
            return "refuse"
        loads = number_ok(value, 0) or (
            len(path) == 4 and (value is None or isinstance(value, bool))
        )  # None or a bool, or a number ≥ 0 (alone or in a list, as betas)
        if not loads:
            return "refuse"
        if key == "lr":
            return "either"  # set again at every step
        if command == "resume":
            same = type(value) is type(original) and value == original
            return "accept" if same else "refuse"
        return "accept"
    entry, key = path[2], path[3]
    step = content["step"]
    if key == "step":
        if isinstance(value, torch.Tensor):
            if (
                value.shape != ()
                or not value.dtype.is_floating_point
                and value.dtype != torch.int64
            ):
                return "refuse"
            value = value.item()
        ok = number_ok(value, 0) and value == int(value) and value <= step
        return "either" if ok else "refuse"
    if not isinstance(value, torch.Tensor) or not value.dtype.is_floating_point:
        return "refuse"
    other = content["optimizer"]["state"][entry]["exp_avg" if key != "exp_avg" else "exp_avg_sq"]
    if value.shape != other.shape or not bool(torch.isfinite(value).all()):
        return "refuse"
    if key == "exp_avg_sq" and bool((value < 0).any()):
        return "refuse"
    if command == "resume" and value.dtype != original.dtype:
        return "refuse"
    return "either"


def _weights(content: dict, path: tuple, original: Any, value: Any, command: str, facts) -> str:
    if len(path) == 1:  # ema = None (train option ema = 0): anything else is wrong
        return "refuse"
    field, key = path[0], path[1]
    if not isinstance(value, torch.Tensor) or value.is_complex():
        return "refuse"
    if value.is_floating_point() and not bool(torch.isfinite(value).all()):
        return "refuse"
    ema = content.get("ema") or {}
    twin = content["model"].get(key) if field == "ema" else ema.get(key)
    if twin is not None and (value.shape != twin.shape or value.dtype != twin.dtype):
        return "refuse"  # the EMA weights must be like the weights they average
    if command == "init":
        if field == "model" and key.startswith("nets.") and value.shape != original.shape:
            return "refuse"
        return "either"
    if value.shape != original.shape or value.dtype != original.dtype:
        return "refuse"
    if key in facts["params"]:
        return "either"
    if key.rpartition(".")[2] in TRAINING_BUFFERS:
        counts = not value.is_floating_point() and value.dtype != torch.bool
        return "refuse" if counts and bool((value < 0).any()) else "either"
    return "either"  # a table is not in the checkpoints dtg writes (and never restored)


# ----------------------------------------------------------------------------- running
def names_field(output: str, path: tuple) -> bool:
    """The refusal names the top-level field and the leaf's own name."""
    if path[0] == "format":
        return "not a dtg checkpoint" in output
    if path[0] == "model_name" and "is of model" in output:  # names both models
        return True
    last = next((str(k) for k in reversed(path) if isinstance(k, str)), str(path[0]))
    return str(path[0]) in output and last in output


def case(program: Path, checkpoint: Path, step: int, command: str, work: Path) -> list[str]:
    """The command line of ``command`` on ``checkpoint``."""
    if command == "sample":
        out = work / "samples.npy"
        return ["sample", str(program), "--checkpoint", str(checkpoint), "-n", "4", "-o", str(out)]
    if command == "resume":
        return ["train", str(program), "--resume", "--steps", str(step + 1), "--out",
                str(checkpoint.parent), "--no-progress"]  # fmt: skip
    return ["train", str(program), "--init", str(checkpoint), "--steps", "1", "--batch", "4",
            "--out", str(work / "init"), "--no-progress"]  # fmt: skip


def fuzz(args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    loaded: dict[str, Any] = {}
    original_load = dtg.program.load

    def cached(path: Any, *rest: Any, **options: Any) -> Any:  # parse each program once
        if str(path) not in loaded:
            loaded[str(path)] = original_load(path, *rest, **options)
        return loaded[str(path)]

    dtg.program.load = cached
    counts: Counter = Counter()
    failures: list[dict[str, Any]] = []
    per_model: dict[str, int] = {}
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="dtg-ckfuzz-") as tmp:
        folder = Path(tmp)
        for model, program in models(folder).items():
            base = folder / f"{model}-run"
            code, text = run(["train", str(program), "--steps", "2", "--batch", "8", "--out",
                              str(base), "--no-progress"])  # fmt: skip
            assert code == 0, text
            content = torch.load(base / "checkpoint.pt", weights_only=True)
            compiled = dtg.load(program).compile(device="cpu")
            facts = {"params": {n for n, _ in compiled.named_parameters()}}
            cases = [
                (p, kind, value)
                for p in leaves(content)
                for kind, value in kinds(get(content, p)).items()
            ]
            cases += [((key,), "missing", None) for key in content]
            if args.field:
                cases = [c for c in cases if c[0][0] in args.field]
            if args.limit:
                cases = rng.sample(cases, min(args.limit, len(cases)))
            per_model[model] = len(cases)
            for number_, (path, kind, value) in enumerate(cases):
                mutated = (
                    {k: v for k, v in content.items() if (k,) != path}
                    if kind == "missing"
                    else put(content, path, value)
                )
                for command in COMMANDS:
                    work = folder / "case"
                    if work.exists():
                        _clear(work)
                    run_dir = work / "run"
                    run_dir.mkdir(parents=True)
                    checkpoint = run_dir / "checkpoint.pt"
                    torch.save(mutated, checkpoint)
                    code, output = run(case(program, checkpoint, content["step"], command, work))
                    expected = (
                        ("accept" if path == ("program",) else "refuse")  # the optional field
                        if kind == "missing"
                        else verdict(content, path, value, command, facts)
                    )
                    problem = _judge(code, output, expected, path, kind, command, work)
                    outcome = {0: "accepted", 1: "refused"}.get(code, f"exit {code}")
                    counts[f"{command}: {outcome}"] += 1
                    counts[f"expected {expected}"] += 1
                    if problem:
                        failures.append({"model": model, "field": name(path), "kind": kind, "command": command,
                                         "exit": code, "problem": problem, "output": output[-600:]})  # fmt: skip
                if args.progress and number_ % 50 == 0:
                    print(
                        f"{model}: {number_}/{len(cases)} cases, {len(failures)} failures",
                        file=sys.stderr,
                    )
    dtg.program.load = original_load
    total = sum(per_model.values())
    return {
        "cases": total,
        "runs": total * len(COMMANDS),
        "per_model": per_model,
        "outcomes": dict(sorted(counts.items())),
        "failures": len(failures),
        "failure_list": failures,
        "seconds": round(time.perf_counter() - started, 1),
        "torch": torch.__version__,
        "numpy": np.__version__,
    }


def _clear(folder: Path) -> None:
    for item in sorted(folder.rglob("*"), reverse=True):
        item.rmdir() if item.is_dir() else item.unlink()
    folder.rmdir()


def _judge(
    code: int, output: str, expected: str, path: tuple, kind: str, command: str, work: Path
) -> str | None:
    """What is wrong with an outcome, or ``None``."""
    if code not in (0, 1):
        return f"exit {code}"
    if "internal error" in output or "Traceback" in output:
        return "traceback"
    if code == 0 and expected == "refuse":
        return "accepted a value the schema refuses"
    if code == 1 and expected == "accept":
        return "refused a value the schema accepts"
    unread = kind == "giant" and "cannot read checkpoint" in output  # torch's reader refuses it
    if code == 1 and expected == "refuse" and not unread and not names_field(output, path):
        return "the refusal does not name the field"
    if code == 0 and command == "sample":
        samples = np.load(work / "samples.npy")
        if samples.dtype.kind == "f" and not np.isfinite(samples).all():
            return "wrote non-finite samples"
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="write the JSON summary here too")
    parser.add_argument("--limit", type=int, default=0, help="at most N random cases per model")
    parser.add_argument("--field", action="append", help="only the leaves of this top-level field")
    parser.add_argument("--seed", type=int, default=0, help="the seed of --limit's choice")
    parser.add_argument("--progress", action="store_true", help="a line every 50 cases (stderr)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    summary = fuzz(args)
    text = json.dumps(summary, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()

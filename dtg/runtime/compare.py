"""Compare withholding strategies on the same data (``dtg compare``).

Each model is trained on the same training rows (all of them, or the same nested random subset
of ``train_size`` rows: :meth:`~dtg.data.dataset.Dataset.with_train_size`), with the same budget
(steps; each model keeps its own batch, learning rate and nets), for each seed; every run
records its held-out curve (train option ``eval_every``, :mod:`dtg.runtime.heldout`) on the same
held-out rows, and is then scored on the whole held-out split. A run folder that already holds
the finished run (same program, steps, seed and train size) is reused, so a study can be
resumed, extended, or run in several processes at once that share ``out``.

Models must declare the same data: the same source with the same options (``dequantize`` aside)
and the same number of dimensions. A token model and a real one of the same pixels compare in
bits per dimension only when the real one is dequantised (:mod:`dtg.data.dequantize`), which is
checked.

References: Uria et al. 2013 and Theis et al. 2016 for bits per dimension of dequantised data.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..data.dequantize import data_bits_per_dim
from ..errors import DtgRuntimeError
from ..ir import ModelIR
from ..ir.model import ObjectiveKind
from .checkpoint import CHECKPOINT, check_source, load_checkpoint, restore_model, seed_everything
from .loop import DATA_SPLIT_SEED, train
from .score import score_examples
from .train_options import resolve_options

__all__ = ["Entry", "check_same_data", "run_study", "summarise"]

#: Where a real model's dequantisation option lives; it does not change which rows are data.
_NOT_DATA = ("dequantize",)
#: The objectives whose models report a held-out NELBO.
_WITH_NELBO = (ObjectiveKind.DENOISING, ObjectiveKind.MASKING, ObjectiveKind.ELBO)


@dataclass
class Entry:
    """One model of a study: its label, file and compiled-model factory."""

    label: str
    file: str
    ir: ModelIR
    compile: Any  # () -> a fresh compiled model


def _declaration(entry: Entry) -> str:
    message = entry.ir.message
    source = message.source
    options = ", ".join(f"{k} = {v!r}" for k, v in (source.options if source else {}).items())
    return f"data {message.name} : {message.space} ~ {source.name if source else '?'}({options})"


def check_same_data(entries: list[Entry]) -> None:
    """Whether the models can be compared on held-out bits.

    :param entries: the study's models.
    :raises DtgRuntimeError: for a model without data or without a NELBO, or naming both models
        when two declare different data (token models also need the same number of levels).
    """
    for entry in entries:
        message = entry.ir.message
        if message.role != "data" or message.source is None:
            raise DtgRuntimeError(
                f"{entry.file}: model '{entry.label}' has no data to compare on",
                hints=["dtg compare trains and scores models of data (a sampler has none)"],
            )
        if entry.ir.objective.kind not in _WITH_NELBO:
            raise DtgRuntimeError(
                f"{entry.file}: model '{entry.label}' (objective "
                f"{entry.ir.objective.kind.value}) has no held-out NELBO to compare",
                hints=["compare models trained by denoising, masking or elbo"],
            )
    first = entries[0]
    for entry in entries[1:]:
        mine, theirs = _data_key(entry), _data_key(first)
        both_tokens = mine[3] is not None and theirs[3] is not None
        if mine[:3] != theirs[:3] or (both_tokens and mine[3] != theirs[3]):
            raise DtgRuntimeError(
                "the models do not share their data: "
                f"{first.file} (model '{first.label}') declares `{_declaration(first)}`, "
                f"{entry.file} (model '{entry.label}') declares `{_declaration(entry)}`",
                hints=["compare models of one data declaration (the same source and options)"],
            )
    kinds = {e.ir.message.space.kind for e in entries}
    for entry in entries:
        message = entry.ir.message
        if len(kinds) > 1 and message.space.kind == "real":
            if not message.source.options.get("dequantize"):
                raise DtgRuntimeError(
                    f"{entry.file}: model '{entry.label}' models the pixels as real numbers "
                    "without dequantisation, so its bits per dimension do not compare with the "
                    "token models'",
                    hints=[f"declare `{_declaration(entry)[:-1]}, dequantize = true)`"],
                )


def _data_key(entry: Entry) -> tuple:
    """``(source, options without dequantize, dimensions, token levels or None)``."""
    source, space = entry.ir.message.source, entry.ir.message.space
    options = {k: v for k, v in source.options.items() if k not in _NOT_DATA}
    levels = space.vocab if space.kind == "token" else None
    return (
        source.name,
        json.dumps(options, sort_keys=True, default=str),
        math.prod(space.shape),
        levels,
    )


def _reusable(path: Path, model: Any, options: dict[str, Any]) -> bool:
    """Whether ``path`` holds the finished run of ``model`` with ``options`` — every train
    option the run would use (the model's block included), not only the study's."""
    if not path.is_file():
        return False
    try:
        content = load_checkpoint(path, model.device)
        check_source(content, model)
    except DtgRuntimeError:
        return False
    wanted = resolve_options(model.ir.train, None, options)
    # the saved options over the defaults: an option added since held its default in that run
    saved = resolve_options({}, content["train_options"] or {}, {})
    return all(saved.get(k) == v for k, v in wanted.items()) and content["step"] == wanted["steps"]


def run_study(
    entries: list[Entry],
    out: Path,
    steps: int,
    train_sizes: list[int],
    seeds: list[int],
    eval_every: int,
    eval_examples: int = 500,
    progress: bool = True,
    train_missing: bool = True,
    eval_levels: int = 0,
) -> list[dict[str, Any]]:
    """Train (or reuse) and score every (model, train size, seed).

    :param train_sizes: training rows per run (0 = all).
    :param train_missing: train the runs not finished yet; ``False`` scores the finished ones
        only (a report while other processes still train).
    :param eval_levels: levels per held-out example on the curves (0 = every level).
    :returns: one record per run: ``model``, ``train_size``, ``seed``, ``steps``, ``curve``
        (``[[step, held-out bits], …]``), ``final_bits``, ``final_nats`` (the whole held-out
        split), ``best_bits``, ``best_step``, ``train_seconds``, ``reused``.
    """
    check_same_data(entries)
    records = []
    for entry in entries:
        for size in train_sizes:
            for seed in seeds:
                folder = out / entry.label / f"n{size or 'all'}" / f"seed{seed}"
                options = {
                    "steps": steps, "seed": seed, "train_size": size, "eval_every": eval_every,
                    "eval_examples": eval_examples, "eval_levels": eval_levels,
                }  # fmt: skip
                record = _one(entry, folder, options, progress, train_missing)
                if record is not None:
                    records.append(record)
    return records


def _one(entry, folder, options: dict, progress: bool, train_missing: bool) -> dict | None:
    steps, size, seed = options["steps"], options["train_size"], options["seed"]
    seed_everything(seed)  # the initial weights are the seed's, as `dtg train --seed` makes them
    model = entry.compile()
    reused = _reusable(folder / CHECKPOINT, model, options)
    seconds = None
    if not reused and not train_missing:
        return None
    if not reused:
        if progress:
            print(f"dtg compare: training {entry.label}, train size {size or 'all'}, "
                  f"seed {seed}", file=sys.stderr, flush=True)  # fmt: skip
        run = train(model, out=folder, force=True, progress=False, overrides=options)
        seconds = run.seconds
    content = load_checkpoint(folder / CHECKPOINT, model.device)
    restore_model(model, content, use_ema=True)
    dataset = model.dataset(DATA_SPLIT_SEED)
    nats = float(score_examples(model, dataset.test, seed=0).mean())  # as dtg eval's figure
    bits = data_bits_per_dim(nats, math.prod(dataset.space.shape), dataset.meta)
    lines = [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines()]
    curve = [[r["step"], r["heldout_bits"]] for r in lines if "heldout_bits" in r]
    best = min(curve, key=lambda c: c[1]) if curve else [steps, math.nan]
    return {
        "model": entry.label, "file": entry.file, "train_size": size, "seed": seed,
        "steps": steps, "curve": curve, "final_bits": bits,
        "final_nats": nats, "best_bits": best[1],
        "best_step": best[0], "train_seconds": seconds if seconds is not None else
        float(content.get("elapsed") or math.nan), "reused": reused,
    }  # fmt: skip


def summarise(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and standard deviation over seeds per (model, train size)."""
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        groups.setdefault((r["model"], r["train_size"]), []).append(r)
    rows = []
    for (model, size), rs in groups.items():
        row: dict[str, Any] = {"model": model, "train_size": size, "seeds": len(rs)}
        for key in ("final_bits", "best_bits", "best_step", "train_seconds"):
            values = torch.tensor([float(r[key]) for r in rs], dtype=torch.float64)
            row[key] = float(values.mean())
            row[f"{key}_sd"] = float(values.std()) if len(rs) > 1 else math.nan
        rows.append(row)
    return rows

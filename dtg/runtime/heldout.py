"""Held-out evaluation during training (train options ``eval_every``, ``eval_examples``,
``keep_best``, ``train_size``, ``eval_levels``).

The held-out split is the data source's test split, loaded with the loop's fixed split seed: it
belongs to the data declaration, not to the run, so every model declaring the same data and every
run of it (and ``dtg eval``, ``dtg compare``) see the same rows. Every ``eval_every`` steps its
first ``eval_examples`` rows are scored by ``model.nelbo`` in eval mode under a fixed random seed
— the Monte-Carlo levels and masks are the same at every evaluation, so the curve moves only with
the weights — and with the EMA weights when the run keeps them (what ``dtg eval`` and
``dtg sample`` use). A diffusion model's NELBO sums its ``T`` levels, one net pass each;
``eval_levels = K`` scores ``K`` levels drawn per example instead (an unbiased estimate,
:mod:`dtg.objectives.level_sum`), ``T / K`` times cheaper. The global random state is restored
afterwards: a run with evaluations trains exactly as one without. Each evaluation appends
``{"step", "heldout_nats", "heldout_bits", "heldout_examples", "heldout_levels",
"eval_seconds"}`` to
``metrics.jsonl``; with ``keep_best`` the checkpoint of the lowest figure so far is ``best.pt``.
The subset's sha256 (and the training rows' with ``train_size``) is recorded in the checkpoint and
checked when a run resumes.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import time
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor

from ..data.dataset import Dataset
from ..data.dequantize import data_bits_per_dim
from ..errors import DtgRuntimeError

__all__ = ["HeldOut", "training_rows", "split_sha256", "evaluation_weights", "BEST"]

#: The checkpoint of the best held-out figure, beside ``checkpoint.pt``.
BEST = "best.pt"
#: Seeds the Monte-Carlo draws of every held-out evaluation (the same at every step).
EVAL_SEED = 20_261_130


def training_rows(dataset: Dataset, train_size: int) -> Dataset:
    """The training rows a run uses: all (``train_size = 0``) or a fixed nested random subset.

    :param dataset: the source's dataset. :param train_size: rows kept (0 = all).
    :returns: the dataset with its training rows chosen.

    :raises DtgRuntimeError: when ``train_size`` exceeds the source's training rows.
    """
    if train_size == 0:
        return dataset
    if train_size > dataset.n_train:
        raise DtgRuntimeError(
            f"train_size = {train_size} but the data source has {dataset.n_train} training "
            "examples",
            hints=[f"use at most {dataset.n_train}, or 0 for all of them"],
        )
    return dataset.with_train_size(train_size)


def split_sha256(test: Tensor, train_index: Tensor | None, levels: int = 0) -> str:
    """The sha256 of the held-out rows (and of the training rows' indices, when a subset, and
    of ``eval_levels`` when not every level is scored: the figures differ in kind).

    :param test: the held-out rows ``[N, *shape]``.
    :param train_index: the training subset's row indices, or ``None`` for all rows.
    :param levels: the run's ``eval_levels``.
    :returns: 64 hex digits.
    """
    digest = hashlib.sha256(test.detach().cpu().contiguous().numpy().tobytes())
    digest.update(str(tuple(test.shape)).encode())
    if train_index is not None:
        digest.update(train_index.cpu().contiguous().numpy().tobytes())
    if levels:
        digest.update(f"eval_levels={levels}".encode())
    return digest.hexdigest()


@contextlib.contextmanager
def evaluation_weights(model: torch.nn.Module, shadow: dict[str, Tensor] | None) -> Iterator[None]:
    """Evaluate with the EMA weights ``shadow`` (when given), in eval mode, without gradients
    for the swap; the raw weights and the mode are restored after.

    :param model: the model being trained. :param shadow: EMA weights by name, or ``None``.
    """
    params = dict(model.named_parameters())
    saved = {n: params[n].detach().clone() for n in shadow} if shadow else {}
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for name, value in (shadow or {}).items():
                params[name].copy_(value)
        yield
    finally:
        with torch.no_grad():
            for name, value in saved.items():
                params[name].copy_(value)
        model.train(was_training)


class HeldOut:
    """The held-out evaluations of one run (see the module docstring).

    :param model: the compiled data model being trained.
    :param dataset: its dataset (``test`` the held-out split; training rows already chosen).
    :param opts: the run's train options.
    :param saved: the checkpoint a run resumes, or ``None``.
    :raises DtgRuntimeError: for a sampler, or when a resumed run's split differs.
    """

    def __init__(
        self, model: Any, dataset: Dataset, opts: dict, saved: dict | None, fresh_best: bool = False
    ) -> None:
        if getattr(model.objective, "nelbo", None) is None:  # said before any step, every rank
            raise DtgRuntimeError(
                f"eval_every: model '{model.ir.name}' has no held-out NELBO (objective "
                f"{model.ir.objective.kind.value})",
                hints=["set eval_every = 0 (the default), or choose an ELBO objective"],
            )
        self.every = int(opts["eval_every"])
        self.keep_best = bool(opts.get("keep_best"))
        self.test = dataset.test[: int(opts["eval_examples"])].to(model.device)
        self.meta, self.space = dataset.meta, dataset.space
        steps = int(model.ir.steps)
        asked = int(opts.get("eval_levels", 0))
        sums = getattr(model.objective, "sums_levels", None)  # one-pass NELBOs are cheap already
        self.levels = asked if 0 < asked < steps and sums is not None and sums() else 0
        self.levels_scored = self.levels or steps
        self.sha256 = split_sha256(self.test, dataset.meta.get("train_index"), self.levels)
        self.best: float | None = None
        self.best_step = 0
        record = (saved or {}).get("heldout")
        if record is not None:
            if record["split_sha256"] != self.sha256:
                raise DtgRuntimeError(
                    "the held-out split (or the training subset) differs from the one recorded "
                    "in the checkpoint: the data, eval_examples, eval_levels or train_size "
                    "changed",
                    hints=["start a fresh run (--force), or restore the data and options"],
                )
            if not fresh_best:  # keep_best turned on at a resume starts its own best.pt
                self.best, self.best_step = record["best"], int(record["best_step"])

    def due(self, step: int, total: int) -> bool:
        """:returns: whether ``step`` is an evaluation step (every ``eval_every`` and the last)."""
        return self.every > 0 and (step % self.every == 0 or step == total)

    def evaluate(self, model: Any, shadow: dict[str, Tensor] | None, batch: int = 500) -> dict:
        """Score the held-out subset.

        :param model: the model being trained (its weights are restored afterwards).
        :param shadow: the EMA weights by name, or ``None`` for the model's own.
        :param batch: rows per ``nelbo`` pass.
        :returns: ``heldout_nats`` (mean NELBO per example), ``heldout_bits`` (per dimension or
            token), ``heldout_examples``, ``heldout_levels`` (levels scored per example),
            ``eval_seconds``.
        """
        start = time.perf_counter()
        device = torch.device(model.device)
        forked = [device] if device.type == "cuda" else []
        with (
            torch.random.fork_rng(devices=forked, device_type=device.type),
            evaluation_weights(model, shadow),
        ):
            torch.manual_seed(EVAL_SEED)
            rows = range(0, len(self.test), batch)
            parts = [model.nelbo(self.test[i : i + batch], levels=self.levels) for i in rows]
            nats = float(torch.cat(parts).double().mean())
        dims = math.prod(self.space.shape)
        return {
            "heldout_nats": nats,
            "heldout_bits": data_bits_per_dim(nats, dims, self.meta),
            "heldout_examples": len(self.test),
            "heldout_levels": self.levels_scored,
            "eval_seconds": round(time.perf_counter() - start, 4),
        }

    def improved(self, step: int, nats: float) -> bool:
        """Note the figure of ``step``; :returns: whether it is the best so far (finite)."""
        if not math.isfinite(nats) or (self.best is not None and nats >= self.best):
            return False
        self.best, self.best_step = nats, step
        return True

    def record(self) -> dict:
        """:returns: the checkpoint's ``heldout`` field."""
        return {
            "split_sha256": self.sha256,
            "examples": len(self.test),
            "best": self.best,
            "best_step": self.best_step,
        }

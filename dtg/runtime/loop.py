"""The training loop: Adam, warm-up, clipping, EMA, seeding, sharded steps, checkpoints, resume.

``train(model, …)`` optimises ``model.loss`` of a compiled model (see :mod:`dtg.runtime`): for a
data model each step draws a minibatch ``Tensor[B, *shape]`` from the declared source through a
dedicated ``torch.Generator``; for a sampler it passes the batch size ``B``. Every ``log_every``
steps a JSON line goes to ``OUT/metrics.jsonl`` (:mod:`dtg.runtime.monitor`); every
``checkpoint_every`` steps and at the end ``OUT/checkpoint.pt`` is rewritten atomically
(:mod:`dtg.runtime.checkpoint`). A NaN/inf loss or gradient stops training with a
:class:`~dtg.errors.DtgRuntimeError` naming the step; the last good checkpoint stays on disk.
Ctrl-C or SIGTERM stops after the current step with a checkpoint (:mod:`dtg.interrupt`), and
callbacks run after every step (:mod:`dtg.runtime.step_callbacks`).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Iterable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel

from ..atomic import make_folder, remove_stale_temporaries
from ..errors import DtgRuntimeError
from ..interrupt import Interrupted, StopOnInterrupt
from ..sync_check import HostSyncCheck
from .checkpoint import (
    CHECKPOINT,
    check_source,
    load_checkpoint,
    restore_training,
    save_checkpoint,
    seed_everything,
    training_state,
)
from .distributed import Context, context_from_env, lost_peer, shard_seed
from .ema import EMA
from .heldout import BEST, HeldOut, training_rows
from .history import History
from .monitor import Monitor, checks_every_step
from .net_execution import TrainingNets
from .step_callbacks import StepCallback, StepEvent, step_callbacks
from .tensorboard import Board
from .train_options import resolve_options
from .update import Update

__all__ = ["train", "Run", "DATA_SPLIT_SEED"]

#: The data source is always loaded with this seed: the train/test split belongs to the model,
#: not to the run, so every run and ``dtg eval`` see the same held-out data.
DATA_SPLIT_SEED = 0


@dataclass
class Run:
    """The outcome of :func:`train`.

    :param step: the final step count (continues across resumes).
    :param start_step: where this call started (0, or the resumed checkpoint's step).
    :param losses: the loss of every step run by this call.
    :param out: the run folder; ``checkpoint`` and ``metrics`` are the files in it.
    :param options: the train options used; ``seconds``: the wall time of this call's loop.
    """

    step: int
    start_step: int
    losses: list[float]
    out: Path
    checkpoint: Path
    metrics: Path
    options: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def history(self) -> History:
        """The run's ``metrics.jsonl`` as a :class:`~dtg.runtime.history.History` (``.plot()``)."""
        return History(self.metrics)

    @property
    def final_loss(self) -> float | None:
        """The loss of the last step run, or ``None`` when this call ran none."""
        return self.losses[-1] if self.losses else None


def train(
    model: Any,
    steps: int | None = None,
    batch: int | None = None,
    lr: float | None = None,
    out: str | Path | None = None,
    seed: int | None = None,
    resume: bool = False,
    progress: bool = True,
    overrides: dict[str, Any] | None = None,
    detect_anomaly: bool = False,
    force: bool = False,
    on_step: StepCallback | Iterable[StepCallback] | None = None,
    tensorboard: str | Path | None = None,
    sync_check: bool = False,
) -> Run:
    """Train a compiled model; options default to its ``train { … }`` block.

    :param model: a :class:`~dtg.runtime.compiled.CompiledModel` (or anything with its interface).
    :param steps: total steps (a resumed run continues up to this count).
    :param out: the run folder (default ``runs/<model name>``).
    :param resume: continue from ``out/checkpoint.pt``: weights, optimizer, EMA, step, random
        states and the data stream all continue, so the result equals an uninterrupted run.
        Options not given now are the checkpoint's.
    :param progress: a tqdm bar on a terminal, else a line every ``log_every`` steps (stderr).
    :param overrides: more train options (``--set KEY=VALUE``), checked against ``TRAIN_OPTIONS``;
        ``steps``, ``batch``, ``lr`` and ``seed`` given as keywords (not ``None``) win over them
        (see :mod:`dtg.runtime.train_options` for the whole order).
    :param detect_anomaly: run under ``torch.autograd.set_detect_anomaly`` (slow; finds NaNs).
    :param force: resume even when the program's source changed since the checkpoint; without
        ``resume``, start a fresh run in a folder that holds a checkpoint (replaced at the
        first save).
    :param on_step: a callable (or several) called with a
        :class:`~dtg.runtime.step_callbacks.StepEvent` after every step, after those registered
        with :func:`~dtg.runtime.step_callbacks.add_step_callback`; one that raises stops training.
    :param tensorboard: also log to TensorBoard in this folder (:mod:`dtg.runtime.tensorboard`).
    :param sync_check: fail when a step reads a value back from the device between the sync
        points (:mod:`dtg.sync_check`).
    :returns: a :class:`Run`.
    :raises DtgRuntimeError: bad options, a bad checkpoint, or a NaN/inf loss or gradient.
    :raises Interrupted: after Ctrl-C or SIGTERM, once the step's checkpoint is written.
    """
    callbacks = step_callbacks(on_step)
    out = Path(out) if out is not None else Path("runs") / model.ir.name
    ckpt_path = out / CHECKPOINT
    saved = load_checkpoint(ckpt_path, model.device) if resume else None
    if saved is not None:
        changed = check_source(saved, model, force)
        if changed:  # --force: resumed although the model's program changed
            print(f"dtg: note: {changed}", file=sys.stderr)
    elif ckpt_path.is_file() and not force:
        raise DtgRuntimeError(
            f"{out} already holds a checkpoint ({ckpt_path}); a fresh run would replace it",
            hints=[
                "continue that run with resume=True (--resume), or start over with "
                "force=True (--force)"
            ],
        )
    keywords = {"steps": steps, "batch": batch, "lr": lr, "seed": seed}
    explicit = {**(overrides or {}), **{k: v for k, v in keywords.items() if v is not None}}
    opts = resolve_options(model.ir.train, saved["train_options"] if saved else None, explicit)
    make_folder(out)
    remove_stale_temporaries(ckpt_path)  # a write cut short by a kill

    ctx = context_from_env(model.device)
    shards = int(opts.get("shards") or 0) or ctx.world
    if shards % ctx.world or int(opts["batch"]) % shards:
        raise DtgRuntimeError(
            f"shards = {shards} must be a multiple of the {ctx.world} processes and divide "
            f"the batch {opts['batch']}",
            hints=["set it with --set shards=N"],
        )
    per_rank = shards // ctx.world
    mine = range(ctx.rank * per_rank, (ctx.rank + 1) * per_rank)
    shard_size = int(opts["batch"]) // shards
    runner = DistributedDataParallel(model, find_unused_parameters=True) if ctx.active else model
    model.train()  # dropout and the like on (evaluate() may have left eval mode)
    dataset = model.dataset(DATA_SPLIT_SEED) if model.needs_data else None
    if dataset is not None:
        dataset = training_rows(dataset, int(opts["train_size"]))
    heldout = _held_out(model, dataset, opts, saved, out)
    groups = model.param_groups(opts["lr"])
    optimizer = torch.optim.Adam(groups)
    base_lrs = [group["lr"] for group in groups]
    data_gen = torch.Generator().manual_seed(opts["seed"] * 1_000_003 + 7)  # not the global seed
    step, elapsed = 0, 0.0
    if saved is not None:
        step, elapsed = restore_training(saved, model, optimizer, data_gen)
    else:
        seed_everything(opts["seed"])
    ema = EMA(model, opts["ema"]) if opts["ema"] > 0 else None
    if ema is not None and saved is not None and saved.get("ema"):
        ema.load(saved["ema"])
    stream = dataset.to(model.device).batches(opts["batch"], data_gen) if dataset else None
    total, start = int(opts["steps"]), step
    device = torch.device(model.device)
    nets = TrainingNets(model, opts["precision"], bool(opts["compile"]), device)
    syncs = HostSyncCheck(device, sync_check)
    scaled = (saved or {}).get("grad_scaler")
    update = Update(optimizer, float(opts["grad_clip"]), opts["precision"], device, syncs, scaled,
                    int(opts["log_every"]))  # fmt: skip
    # On the CPU every step is checked before its update; on a GPU, checks (syncs) are batched
    # (and so under --sync-check, which proves the step between those points reads nothing).
    per_step = checks_every_step(model.device) and not sync_check
    eager = per_step and not ctx.active  # ranks must not diverge
    # only rank 0 writes metrics and checkpoints, and shows progress
    monitor_out = out if ctx.main else Path(tempfile.mkdtemp(prefix="dtg-rank"))
    monitor = Monitor(
        model,
        opts,
        monitor_out,
        step,
        elapsed,
        progress and ctx.main,
        resumed=saved is not None,
        sync_every=1 if per_step else int(opts["log_every"]),
        board=Board(tensorboard, model, step) if tensorboard is not None and ctx.main else None,
    )
    stop = StopOnInterrupt(repeat_quits=not ctx.active, announce=ctx.main)
    agree_every = 1 if per_step else int(opts["log_every"])  # ranks agree at the sync points
    set_step = getattr(model, "set_step", None)  # the elbo KL warm-up reads the step
    try:
        with torch.autograd.set_detect_anomaly(True) if detect_anomaly else nullcontext():
            while step < total:
                _warm_up(optimizer, base_lrs, step, opts["warmup"])
                if set_step is not None:  # once per step, however many shards call the loss
                    set_step(step)
                with syncs.step(step + 1), nets:
                    data = next(stream) if stream is not None else int(opts["batch"])
                    if shards == 1:
                        loss = model.loss(data)
                        if eager:
                            monitor.check(step + 1, "loss", loss, data)  # before the update
                        optimizer.zero_grad(set_to_none=True)
                        update.backward(loss)
                    else:
                        optimizer.zero_grad(set_to_none=True)
                        loss = _sharded_backward(
                            runner, data, mine, shard_size, opts["seed"], step, ctx, update
                        )
                    norm = update.norm()  # clipped (unscaled first under fp16)
                    if eager:
                        monitor.check(step + 1, "gradient norm", norm, data)
                    update.step(step + 1)
                    if ema is not None:
                        ema.update(model)
                step += 1
                if callbacks:
                    event = StepEvent(step, total, loss.detach(), ctx.rank, ctx.world, out)
                    for callback in callbacks:
                        _call(callback, event)
                monitor.record(step, loss, norm, data, optimizer.param_groups[0]["lr"])
                if heldout is not None and heldout.due(step, total) and ctx.main:
                    shadow = ema.shadow if ema is not None else None
                    figures = heldout.evaluate(model, shadow)
                    monitor.write_record(step, figures, shadow)
                    if heldout.improved(step, figures["heldout_nats"]) and heldout.keep_best:
                        monitor.flush()
                        best = _state(
                            model, optimizer, ema, step, data_gen, opts, monitor, heldout, update
                        )
                        save_checkpoint(out / BEST, best)
                due = step % opts["checkpoint_every"] == 0 or step == total
                stopping = stop.requested
                if ctx.active:  # the ranks stop together, at a step where they compare flags
                    agree = step % agree_every == 0 or due
                    stopping = (ctx.any_rank(stopping or 0) or None) if agree else None
                if ctx.main and (due or stopping):
                    monitor.flush()
                    state = _state(
                        model, optimizer, ema, step, data_gen, opts, monitor, heldout, update
                    )
                    save_checkpoint(ckpt_path, state)
                    monitor.good = step
                if stopping:
                    raise Interrupted(step, ckpt_path, stopping)
    except RuntimeError as error:
        if ctx.active and lost_peer(error):  # the dead rank's own message says why
            raise DtgRuntimeError(
                f"rank {ctx.rank} stopped at step {step + 1}: another process of the job died"
            ) from None
        raise
    finally:
        stop.close()
        monitor.close()
        ctx.close()
        if not ctx.main:  # the throw-away metrics of a non-zero rank
            shutil.rmtree(monitor_out, ignore_errors=True)
    seconds = monitor.elapsed() - elapsed
    return Run(step, start, monitor.losses, out, ckpt_path, monitor.path, opts, seconds)


def _held_out(
    model: Any, dataset: Any, opts: dict, saved: dict | None, out: Path
) -> HeldOut | None:
    """The run's held-out evaluations (``eval_every > 0``), or ``None``.

    :raises DtgRuntimeError: for ``eval_every``, ``keep_best`` or ``train_size`` on a sampler.
    """
    if dataset is None:
        asked = [k for k in ("eval_every", "train_size", "keep_best") if opts.get(k)]
        if asked:
            raise DtgRuntimeError(
                f"{asked[0]} needs data, and model '{model.ir.name}' is a sampler (no data)",
                hints=["drop it: a sampler's figures come from dtg eval (log Ẑ, ESS, …)"],
            )
        return None
    before = int(((saved or {}).get("train_options") or {}).get("train_size", 0))
    if saved is not None and before != int(opts["train_size"]):
        raise DtgRuntimeError(
            f"train_size = {opts['train_size']} differs from the run's {before}: a resumed run "
            "trains on the same rows",
            hints=["start a fresh run (--force) to train on other rows"],
        )
    if int(opts["eval_every"]) == 0:
        if opts.get("keep_best"):
            raise DtgRuntimeError(
                "keep_best needs held-out evaluations", hints=["set eval_every = N as well"]
            )
        return None
    fresh_best = bool(opts.get("keep_best")) and not (out / BEST).exists()
    return HeldOut(model, dataset, opts, saved, fresh_best)


def _state(model, optimizer, ema, step, data_gen, opts, monitor, heldout, update) -> dict[str, Any]:
    """The checkpoint of ``step`` (with the held-out record when the run evaluates, and the
    gradient scaler's state for fp16)."""
    shadow = ema.shadow if ema is not None else None
    state = training_state(model, optimizer, shadow, step, data_gen, opts, monitor.elapsed())
    if heldout is not None:
        state["heldout"] = heldout.record()
    if update.state() is not None:
        state["grad_scaler"] = update.state()
    return state


def _call(callback: StepCallback, event: StepEvent) -> None:
    """Run one step callback; one that calls ``sys.exit`` is a failure, not a silent stop."""
    try:
        callback(event)
    except SystemExit as exit_:
        name = getattr(callback, "__qualname__", type(callback).__name__)
        raise DtgRuntimeError(
            f"the step callback {name} called sys.exit({exit_.code!r}) at step {event.step}",
            hints=["raise an exception to stop training (the last checkpoint stays)"],
        ) from None


def _warm_up(optimizer: torch.optim.Optimizer, base_lrs: list[float], step: int, warmup: int):
    """Set each group's learning rate for step ``step + 1``: linear from 0 over ``warmup`` steps."""
    factor = min(1.0, (step + 1) / warmup) if warmup else 1.0
    for group, base_lr in zip(optimizer.param_groups, base_lrs, strict=True):
        group["lr"] = base_lr * factor


def _sharded_backward(
    runner: Any,
    data: Any,
    mine: range,
    size: int,
    seed: int,
    step: int,
    ctx: Context,
    update: Update,
) -> torch.Tensor:
    """Accumulate the gradient of this rank's shards; each shard has its own seeded stream
    (``update.backward``: scaled for fp16).

    :returns: the mean loss over all shards of all ranks (for logging), a scalar.
    """
    losses = []
    for position, shard in enumerate(mine):
        torch.manual_seed(shard_seed(int(seed), step, shard))
        part = data[shard * size : (shard + 1) * size] if isinstance(data, torch.Tensor) else size
        last = position == len(mine) - 1
        sync = nullcontext() if last or not ctx.active else runner.no_sync()
        with sync:
            loss = runner(part) if ctx.active else runner.loss(part)
            update.backward(loss / len(mine))
        losses.append(loss.detach())
    return ctx.all_mean(torch.stack(losses).mean())

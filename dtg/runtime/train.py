"""The training loop: Adam, warm-up, clipping, EMA, seeding, metrics, checkpoints, resume.

``train(model, …)`` optimises ``model.loss`` of a compiled model (see :mod:`dtg.runtime`): for a
data model each step draws a minibatch ``Tensor[B, *shape]`` from the declared source through a
dedicated ``torch.Generator``; for a sampler it passes the batch size ``B``. Every ``log_every``
steps a JSON line goes to ``OUT/metrics.jsonl``; every ``checkpoint_every`` steps and at the end
``OUT/checkpoint.pt`` is rewritten atomically. A NaN/inf loss or gradient stops training with a
:class:`~dtg.errors.DtgRuntimeError` naming the step; the last good checkpoint stays on disk.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import DtgRuntimeError, did_you_mean
from . import checkpoint as ck
from .checkpoint import seed_everything
from .device import resolve_device

__all__ = ["train", "Run", "EMA", "resolve_device", "seed_everything", "coerce_option"]
__all__ += ["OptionError", "CHECKPOINT", "METRICS", "DATA_SPLIT_SEED", "Interrupted"]

CHECKPOINT, METRICS = "checkpoint.pt", "metrics.jsonl"
#: The data source is always loaded with this seed: the train/test split belongs to the model,
#: not to the run, so every run and ``dtg eval`` see the same held-out data.
DATA_SPLIT_SEED = 0


class OptionError(ValueError):
    """A bad train option (unknown key or value out of range); ``hint`` may suggest a fix."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message, self.hint = message, hint


def coerce_option(key: str, value: Any) -> int | float:
    """Check one train option against :data:`dtg.check.objectives.TRAIN_OPTIONS`.

    :param key: the option name (``steps``, ``lr``, …).
    :param value: a number, or text from ``--set KEY=VALUE``.
    :returns: the value as ``int`` or ``float``.
    :raises OptionError: for an unknown key (with a did-you-mean) or a bad value.
    """
    from ..check.objectives import TRAIN_OPTIONS

    spec = TRAIN_OPTIONS.get(key)
    if spec is None:
        raise OptionError(
            f"unknown train option '{key}' (options: {', '.join(TRAIN_OPTIONS)})",
            did_you_mean(key, TRAIN_OPTIONS),
        )
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number):
        raise OptionError(f"train option '{key}' must be a finite number, got {value!r}")
    if spec.kind == "int":
        if not number.is_integer():
            raise OptionError(f"train option '{key}' must be a whole number, got {value!r}")
        number = int(number)
    if spec.low is not None and (number < spec.low or (spec.open_low and number <= spec.low)):
        raise OptionError(
            f"train option '{key}' must be {'>' if spec.open_low else '≥'} {spec.low:g}, got {value}"
        )
    if spec.high is not None and number > spec.high:
        raise OptionError(f"train option '{key}' must be ≤ {spec.high:g}, got {value}")
    return number


class EMA:
    """An exponential moving average of a model's parameters: ``e ← d·e + (1 − d)·p``.

    :param model: the module whose parameters are tracked (by name).
    :param decay: ``d`` in ``(0, 1]``.
    """

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        self.decay = decay
        self.names = [n for n, p in model.named_parameters() if p.requires_grad]
        params = dict(model.named_parameters())
        self.shadow = {n: params[n].detach().clone() for n in self.names}

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        params = dict(model.named_parameters())
        current = [params[n].detach() for n in self.names]
        torch._foreach_lerp_(list(self.shadow.values()), current, 1.0 - self.decay)

    def load(self, state: dict[str, torch.Tensor]) -> None:
        for name, value in state.items():
            if name in self.shadow:
                self.shadow[name].copy_(value)


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
    def final_loss(self) -> float | None:
        return self.losses[-1] if self.losses else None


def _options(model: Any, saved: dict | None, explicit: dict[str, Any]) -> dict[str, Any]:
    from ..check.objectives import TRAIN_OPTIONS

    defaults = {key: spec.default for key, spec in TRAIN_OPTIONS.items()}
    options = {**defaults, **dict(model.ir.train), **(saved or {})}
    for key, value in explicit.items():
        if value is not None:
            try:
                options[key] = coerce_option(key, value)
            except OptionError as error:
                raise DtgRuntimeError(
                    error.message, hints=[error.hint] if error.hint else []
                ) from None
    return options


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
) -> Run:
    """Train a compiled model; options default to its ``train { … }`` block.

    :param model: a :class:`~dtg.runtime.compiled.CompiledModel` (or anything with its interface).
    :param steps: total steps (a resumed run continues up to this count).
    :param out: the run folder (default ``runs/<model name>``).
    :param resume: continue from ``out/checkpoint.pt``: weights, optimizer, EMA, step, random
        states and the data stream all continue, so the result equals an uninterrupted run.
        Options not given now are the checkpoint's.
    :param progress: a tqdm bar on a terminal, else a line every ``log_every`` steps (stderr).
    :param overrides: more train options (``--set KEY=VALUE``), checked against ``TRAIN_OPTIONS``.
    :param detect_anomaly: run under ``torch.autograd.set_detect_anomaly`` (slow; finds NaNs).
    :param force: resume even when the program's source changed since the checkpoint.
    :returns: a :class:`Run`.
    :raises DtgRuntimeError: bad options, a bad checkpoint, or a NaN/inf loss or gradient.
    """
    out = Path(out) if out is not None else Path("runs") / model.ir.name
    ckpt_path = out / CHECKPOINT
    saved = ck.load_checkpoint(ckpt_path, model.device) if resume else None
    if saved is not None:
        ck.check_source(saved, model.program, force)
    explicit = {**(overrides or {}), "steps": steps, "batch": batch, "lr": lr, "seed": seed}
    opts = _options(model, saved["train_options"] if saved else None, explicit)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob(f".{CHECKPOINT}.*.tmp"):  # a write cut short by a kill
        stale.unlink(missing_ok=True)

    from .distributed import context_from_env, shard_seed

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
    runner = model
    if ctx.active:
        from torch.nn.parallel import DistributedDataParallel

        runner = DistributedDataParallel(model, find_unused_parameters=True)
    model.train()  # dropout and the like on (evaluate() may have left eval mode)
    dataset = model.dataset(DATA_SPLIT_SEED) if model.needs_data else None
    groups = model.param_groups(opts["lr"])
    optimizer = torch.optim.Adam(groups)
    base_lrs = [group["lr"] for group in groups]
    params = [p for group in optimizer.param_groups for p in group["params"]]
    data_gen = torch.Generator().manual_seed(opts["seed"] * 1_000_003 + 7)  # not the global seed
    step, elapsed = 0, 0.0
    if saved is not None:
        step, elapsed = ck.restore_training(saved, model, optimizer, data_gen)
    else:
        seed_everything(opts["seed"])
    ema = EMA(model, opts["ema"]) if opts["ema"] > 0 else None
    if ema is not None and saved is not None and saved.get("ema"):
        ema.load(saved["ema"])
    stream = dataset.to(model.device).batches(opts["batch"], data_gen) if dataset else None
    total, start = int(opts["steps"]), step
    # On the CPU every step is checked before its update; on a GPU, checks (syncs) are batched.
    eager = _checks_every_step(model.device) and not ctx.active  # ranks must not diverge
    if not ctx.main:  # only rank 0 writes metrics and checkpoints, and shows progress
        import tempfile

        monitor_out, progress = Path(tempfile.mkdtemp(prefix="dtg-rank")), False
    else:
        monitor_out = out
    monitor = _Monitor(model, opts, monitor_out, step, elapsed, progress, resumed=saved is not None)
    stop = _StopOnInterrupt(enabled=not ctx.active)
    try:
        with torch.autograd.set_detect_anomaly(True) if detect_anomaly else nullcontext():
            while step < total:
                factor = min(1.0, (step + 1) / opts["warmup"]) if opts["warmup"] else 1.0
                for group, base_lr in zip(optimizer.param_groups, base_lrs, strict=True):
                    group["lr"] = base_lr * factor
                data = next(stream) if stream is not None else int(opts["batch"])
                if shards == 1:
                    loss = model.loss(data)
                    if eager:
                        monitor.check(step + 1, "loss", loss, data)  # before the update
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                else:
                    optimizer.zero_grad(set_to_none=True)
                    loss = _sharded_backward(
                        runner, data, mine, shard_size, opts["seed"], step, shard_seed, ctx
                    )
                norm = _grad_norm(params, float(opts["grad_clip"]))
                if eager:
                    monitor.check(step + 1, "gradient norm", norm, data)
                optimizer.step()
                if ema is not None:
                    ema.update(model)
                step += 1
                _maybe_fail(ctx.rank, step)
                monitor.record(step, loss, norm, data, optimizer.param_groups[0]["lr"])
                due = step % opts["checkpoint_every"] == 0 or step == total
                if ctx.main and (due or stop.requested):
                    monitor.flush()
                    shadow = ema.shadow if ema is not None else None
                    seconds = monitor.elapsed()
                    state = ck.training_state(
                        model, optimizer, shadow, step, data_gen, opts, seconds
                    )
                    ck.save_checkpoint(ckpt_path, state)
                    monitor.good = step
                if stop.requested:
                    raise Interrupted(step, ckpt_path)
    finally:
        stop.close()
        monitor.close()
        ctx.close()
        if not ctx.main:  # the throw-away metrics of a non-zero rank
            import shutil

            shutil.rmtree(monitor_out, ignore_errors=True)
    seconds = monitor.elapsed() - elapsed
    return Run(step, start, monitor.losses, out, ckpt_path, monitor.path, opts, seconds)


class Interrupted(KeyboardInterrupt):
    """Training stopped by Ctrl-C after a whole step, with a checkpoint of that step on disk.

    :param step: the last step done. :param checkpoint: where it was saved.
    """

    def __init__(self, step: int, checkpoint: Path) -> None:
        super().__init__(f"interrupted after step {step}")
        self.step, self.checkpoint = step, checkpoint


class _StopOnInterrupt:
    """The first Ctrl-C (SIGINT) asks the loop to stop after the current step and save; the
    second stops at once. Only in the main thread of a single process (ranks of a distributed
    job must stop at the same step, so they keep Python's default)."""

    def __init__(self, enabled: bool) -> None:
        self.requested = False
        self.previous = None
        if enabled and threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum, frame) -> None:
        if self.requested:
            signal.signal(signal.SIGINT, self.previous)
            raise KeyboardInterrupt
        self.requested = True
        print(
            "\ndtg: stopping after this step to save a checkpoint (Ctrl-C again to quit now)",
            file=sys.stderr,
        )

    def close(self) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
            self.previous = None


def _maybe_fail(rank: int, step: int) -> None:
    """``DTG_FAIL_AT_STEP=RANK:STEP`` kills that rank there (to test failure handling)."""
    spec = os.environ.get("DTG_FAIL_AT_STEP")
    if spec and spec == f"{rank}:{step}":
        os._exit(17)


def _sharded_backward(runner, data, mine, size, seed, step, shard_seed, ctx) -> torch.Tensor:
    """Accumulate the gradient of this rank's shards; each shard has its own seeded stream.

    :returns: the mean loss over all shards of all ranks (for logging), a scalar.
    """
    from contextlib import nullcontext

    losses = []
    for position, shard in enumerate(mine):
        torch.manual_seed(shard_seed(int(seed), step, shard))
        part = data[shard * size : (shard + 1) * size] if isinstance(data, torch.Tensor) else size
        last = position == len(mine) - 1
        sync = nullcontext() if last or not ctx.active else runner.no_sync()
        with sync:
            loss = runner(part) if ctx.active else runner.loss(part)
            (loss / len(mine)).backward()
        losses.append(loss.detach())
    return ctx.all_mean(torch.stack(losses).mean())


class _Monitor:
    """Loss bookkeeping for :func:`train`: NaN checks, ``metrics.jsonl``, the progress display."""

    def __init__(
        self,
        model: Any,
        opts: dict,
        out: Path,
        step: int,
        elapsed: float,
        progress: bool,
        resumed: bool,
    ) -> None:
        self.model, self.opts, self.total = model, opts, int(opts["steps"])
        self.path, self.checkpoint = out / METRICS, out / CHECKPOINT
        self.good = step if resumed else 0
        self.elapsed0, self.t0 = elapsed, time.perf_counter()
        self.window_step, self.window_time = step, self.t0
        self.sync_every = 1 if _checks_every_step(model.device) else int(opts["log_every"])
        self.losses: list[float] = []
        self.pending: list[tuple[int, torch.Tensor, torch.Tensor, Any]] = []
        self.progress, self.tty = progress, progress and sys.stderr.isatty()
        lines = self.path.read_text().splitlines() if resumed and self.path.exists() else []
        # keep the lines up to the checkpoint (a run that died later wrote more)
        kept = [x for x in lines if _line_step(x) <= step]
        self.path.write_text("".join(x + "\n" for x in kept))
        self.log = self.path.open("a", encoding="utf-8")
        from tqdm import tqdm

        self.bar = tqdm(
            total=self.total,
            initial=step,
            disable=not self.tty,
            unit="step",
            file=sys.stderr,
            dynamic_ncols=True,
        )

    def elapsed(self) -> float:
        return self.elapsed0 + time.perf_counter() - self.t0

    def check(self, step: int, what: str, value: torch.Tensor | float, data: Any) -> float:
        """:raises DtgRuntimeError: when ``value`` is NaN or infinite, naming ``step``."""
        number = float(value.detach() if isinstance(value, torch.Tensor) else value)
        if math.isfinite(number):
            return number
        hints, diagnose = [], getattr(self.model, "diagnose_nan", None)
        if diagnose is not None and data is not None:
            try:
                found = diagnose(data)
            except Exception as error:  # a diagnosis must never hide the real error
                found = f"(diagnosis failed: {error})"
            hints += [f"first non-finite value: {found}"] if found else []
        good = f"{self.checkpoint} (step {self.good})" if self.good else "none was written"
        hints += [
            f"the last good checkpoint: {good}",
            "lower the learning rate (--lr), set "
            "grad_clip, or find the operation with --detect-anomaly (slow)",
        ]
        raise DtgRuntimeError(
            f"training stopped at step {step}: the {what} became {number}", hints=hints
        )

    def record(self, step: int, loss: torch.Tensor, norm: torch.Tensor, data: Any, lr: float):
        self.bar.update(1)
        self.pending.append((step, loss.detach(), norm.detach(), data))
        logging = step % self.opts["log_every"] == 0 or step == self.total
        if len(self.pending) >= self.sync_every or logging:
            self.flush()
        if logging:
            self.write_line(step, data, lr)

    def flush(self) -> None:
        """Check and keep the pending losses (one device sync for all of them)."""
        if not self.pending:
            return
        values = torch.stack([torch.stack([p[1], p[2].to(p[1])]) for p in self.pending]).tolist()
        for (step, _, _, data), (loss, norm) in zip(self.pending, values, strict=True):
            self.check(step, "gradient norm", norm, data)
            self.losses.append(self.check(step, "loss", loss, data))
        self.pending.clear()
        if self.tty:
            self.bar.set_postfix(loss=f"{self.losses[-1]:.4f}", refresh=False)

    def write_line(self, step: int, data: Any, lr: float) -> None:
        now = time.perf_counter()
        window = self.losses[-(step - self.window_step) :]
        line = {
            "step": step,
            "loss": sum(window) / len(window),
            "lr": lr,
            "time": round(self.elapsed(), 4),
            "steps_per_s": round((step - self.window_step) / max(now - self.window_time, 1e-9), 3),
            **{k: float(v) for k, v in self.model.metrics(data).items()},
        }
        self.log.write(json.dumps(line) + "\n")
        self.log.flush()
        if self.progress and not self.tty:
            print(
                f"step {step}/{self.total}  loss {line['loss']:.4f}  lr {lr:.3g}  "
                f"{line['steps_per_s']:.1f} steps/s",
                file=sys.stderr,
                flush=True,
            )
        self.window_step, self.window_time = step, now

    def close(self) -> None:
        self.log.close()
        self.bar.close()


def _line_step(line: str) -> float:
    """The step of a ``metrics.jsonl`` line (infinite for a torn or foreign line: dropped)."""
    try:
        return float(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return math.inf


def _checks_every_step(device: torch.device) -> bool:
    """On the CPU a check is free; on a GPU each one is a sync, so they wait for a log line."""
    return device.type == "cpu"


def _grad_norm(params: list[torch.Tensor], clip: float) -> torch.Tensor:
    """The global gradient norm (a 0-d tensor); clips the gradients to ``clip`` when positive."""
    if clip > 0:
        return torch.nn.utils.clip_grad_norm_(params, clip)
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))

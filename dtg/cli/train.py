"""``dtg train FILE …``: train a model, writing ``OUT/checkpoint.pt`` and ``OUT/metrics.jsonl``.

A bad command line (a missing file, ``--set`` without ``=``, an unknown option) is a
:class:`~dtg.cli.errors.UsageError` (exit 2), checked before the file is loaded; a problem while
running (no CUDA, a corrupted checkpoint, a NaN loss) is a :class:`~dtg.errors.DtgRuntimeError`
(exit 1). Training imports torch, so :mod:`dtg.runtime` is imported when the command runs.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from ..ir.options import TRAIN_OPTIONS
from .errors import usage
from .models import add_model_arguments, compile_model, load_program

__all__ = ["register", "cmd_train", "parse_sets"]


def parse_sets(pairs: list[str]) -> dict[str, int | float]:
    """``--set KEY=VALUE`` pairs → checked train options.

    :param pairs: the ``--set`` values.
    :returns: each key's value, of the option's type.
    :raises UsageError: a pair without ``=``, an unknown key (with a did-you-mean), a bad value.
    """
    from ..runtime.train import OptionError, coerce_option  # heavy: imports torch

    options: dict[str, int | float] = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        if not equals or not key.strip():
            raise usage(f"--set expects KEY=VALUE (e.g. --set lr=1e-3), got '{pair}'")
        try:
            options[key.strip()] = coerce_option(key.strip(), value.strip())
        except OptionError as error:
            raise usage(error.message + (f"; {error.hint}" if error.hint else "")) from None
    return options


def _flags(args: argparse.Namespace, keys: tuple[str, ...]) -> dict[str, Any]:
    """The train options given as their own flags (``--steps``, ``--lr`` …), checked."""
    from ..runtime.train import OptionError, coerce_option  # heavy: imports torch

    flags = {}
    for key in keys:
        value = getattr(args, key, None)
        if value is not None:
            try:
                flags[key] = coerce_option(key, value)
            except OptionError as error:
                raise usage(f"--{key}: {error.message}") from None
    return flags


def _check_nproc(nproc: int | None) -> None:
    """Refuse ``--nproc`` below 1 or past 2^63, as a ``.dtg`` file refuses such counts."""
    if nproc is not None and not 1 <= nproc < 2**63:
        raise usage(f"--nproc must be a whole number of processes ≥ 1, got {nproc}")


def _without_nproc(argv: list[str]) -> list[str]:
    """The command line without ``--nproc N`` / ``--nproc=N`` (for torchrun to re-run)."""
    out, skip = [], False
    for item in argv:
        if skip:
            skip = False
        elif item == "--nproc":
            skip = True
        elif not item.startswith("--nproc="):
            out.append(item)
    return out


def cmd_train(args: argparse.Namespace) -> int:
    """Train (or resume, or fine-tune from ``--init``) and report where the run was written.

    :param args: the parsed ``dtg train`` arguments.
    :returns: 0.
    :raises UsageError: for a bad option, a missing file or checkpoint, an ``--out`` that is a file.
    """
    from ..runtime.checkpoint import seed_everything  # heavy: imports torch
    from ..runtime.train import CHECKPOINT, train  # heavy: imports torch

    overrides = parse_sets(args.overrides)  # cheap checks first: loading FILE takes a moment
    flags = _flags(args, ("steps", "batch", "lr", "seed"))
    for key in flags.keys() & overrides.keys():
        if flags[key] != overrides[key]:
            raise usage(f"--{key} {flags[key]} and --set {key}={overrides[key]} disagree: give one")
    _check_nproc(args.nproc)
    program, ir = load_program(args)
    out = Path(args.out) if args.out else Path("runs") / ir.name
    if out.exists() and not out.is_dir():
        raise usage(f"--out {out} is a file, not a folder")
    if args.resume and not (out / CHECKPOINT).exists():
        raise usage(f"nothing to resume: no checkpoint at {out / CHECKPOINT}")
    if not args.resume and not args.force and (out / CHECKPOINT).is_file():
        raise usage(
            f"{out} already holds a checkpoint: continue it with --resume, or start a new run "
            f"over it with --force (or choose another --out)"
        )
    if args.nproc is not None and args.nproc > 1 and "WORLD_SIZE" not in os.environ:
        from ..runtime.distributed import launch  # heavy: imports torch.distributed

        return launch(_without_nproc(sys.argv[1:]), args.nproc)
    if args.init and not Path(args.init).exists():
        raise usage(f"no such checkpoint for --init: {args.init}")
    options = {**overrides, **flags}  # the flags win (dtg.runtime.train_options: the order)
    seed_everything(int(options.get("seed", ir.train.get("seed", 0))))
    model = compile_model(program, ir, args.device)  # seeded: the initial weights reproduce
    if args.init and not args.resume:
        _init_from(model, args.init)
    run = train(
        model,
        out=out,
        resume=args.resume,
        progress=not args.no_progress,
        overrides=options,
        detect_anomaly=args.detect_anomaly,
        sync_check=args.sync_check,
        force=args.force,
        tensorboard=args.tensorboard,
    )
    if os.environ.get("RANK", "0") != "0":
        return 0  # rank 0 reports for the whole job
    if run.step == run.start_step:
        print(f"{ir.name}: already trained to step {run.step} (raise --steps to continue)")
    else:
        loss = f", final loss {run.final_loss:.4f}" if run.final_loss is not None else ""
        print(
            f"{ir.name}: trained steps {run.start_step + 1}-{run.step}{loss} in {run.seconds:.1f} s"
        )
    print(f"checkpoint: {run.checkpoint}")
    print(f"metrics:    {run.metrics}")
    return 0


def _init_from(model: Any, checkpoint: str) -> None:
    """Start ``model`` from a parent model's checkpoint (``--init``, fine-tuning): its nets'
    weights only (the EMA weights when there are), from a checkpoint of any model whose nets fit;
    the tables stay this program's."""
    from ..runtime.checkpoint import effective_state, load_checkpoint  # heavy: imports torch

    if not hasattr(model, "init_from_parent"):
        raise usage("--init needs a compiled dtg model")
    parent = load_checkpoint(Path(checkpoint), model.device)
    model.init_from_parent(effective_state(parent))
    weights = " (its EMA weights)" if parent.get("ema") else ""
    print(f"initialised from {checkpoint}{weights}")


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``train`` to the ``dtg`` subcommands.

    :param commands: the subparsers of the main parser.
    """
    train = commands.add_parser(
        "train", help="train a model (writes DIR/checkpoint.pt, DIR/metrics.jsonl)"
    )
    add_model_arguments(train)
    train.add_argument("--steps", type=int, metavar="N", help="total steps")
    train.add_argument("--batch", type=int, metavar="B", help="batch size")
    train.add_argument("--lr", type=float, metavar="LR", help="learning rate")
    train.add_argument("--out", metavar="DIR", help="run folder (default: runs/<model>)")
    train.add_argument("--seed", type=int, metavar="S", help="random seed")
    train.add_argument("--resume", action="store_true", help="continue from DIR/checkpoint.pt")
    train.add_argument(
        "--force",
        action="store_true",
        help="resume even if the model's program changed since the checkpoint; without "
        "--resume, train afresh over DIR's checkpoint",
    )
    train.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"override a train option ({', '.join(TRAIN_OPTIONS)})",
    )
    train.add_argument(
        "--init", metavar="CKPT", help="start from a parent model's checkpoint (fine-tuning)"
    )
    train.add_argument(
        "--nproc", type=int, metavar="N", help="train on N local processes (torchrun, DDP)"
    )
    train.add_argument("--detect-anomaly", action="store_true", help="find the op making NaNs")
    train.add_argument(
        "--sync-check", action="store_true",
        help="fail when a step reads a value back from the device between log lines",
    )  # fmt: skip
    train.add_argument("--no-progress", action="store_true", help="no progress bar or lines")
    train.add_argument(
        "--tensorboard", metavar="DIR",
        help="also log metrics, held-out figures and sample grids to TensorBoard in DIR",
    )  # fmt: skip
    train.set_defaults(run=cmd_train)

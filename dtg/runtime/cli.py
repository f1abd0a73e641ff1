"""The ``dtg train``, ``dtg sample`` and ``dtg eval`` subcommands (registered into ``dtg.cli``).

A bad command line (a missing file, ``--set`` without ``=``, an unknown option) is a
``dtg.cli.UsageError`` (exit 2); a problem while running (no CUDA, a corrupted checkpoint, a NaN
loss) is a :class:`~dtg.errors.DtgRuntimeError` (exit 1). Both print one clear message.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["register", "cmd_train", "cmd_sample", "cmd_eval", "parse_sets"]


def _usage(message: str) -> Exception:
    from ..cli import UsageError  # lazily: dtg.cli imports the command modules

    return UsageError(f"dtg: error: {message}")


def parse_sets(pairs: list[str]) -> dict[str, int | float]:
    """``--set KEY=VALUE`` pairs → checked train options.

    :raises UsageError: a pair without ``=``, an unknown key (with a did-you-mean), a bad value.
    """
    from .train import OptionError, coerce_option

    options: dict[str, int | float] = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        if not equals or not key.strip():
            raise _usage(f"--set expects KEY=VALUE (e.g. --set lr=1e-3), got '{pair}'")
        try:
            options[key.strip()] = coerce_option(key.strip(), value.strip())
        except OptionError as error:
            raise _usage(error.message + (f"; {error.hint}" if error.hint else "")) from None
    return options


def _flags(args: argparse.Namespace, keys: tuple[str, ...]) -> dict[str, Any]:
    from .train import OptionError, coerce_option

    flags = {}
    for key in keys:
        value = getattr(args, key, None)
        if value is not None:
            try:
                flags[key] = coerce_option(key, value)
            except OptionError as error:
                raise _usage(f"--{key}: {error.message}") from None
    return flags


def _program(args: argparse.Namespace) -> tuple[Any, Any]:
    """The program of ``FILE`` and the model named by ``--model`` (default: the file's last)."""
    from ..program import load

    file = Path(args.file)
    if not file.exists():
        raise _usage(f"no such file: {args.file}")
    if file.is_dir():
        raise _usage(f"{args.file} is a directory, not a .dtg file")
    program = load(file)
    try:
        return program, program.model(args.model)
    except KeyError:
        names = ", ".join(m.name for m in program.models)
        raise _usage(f"no model '{args.model}' in {args.file} (models: {names})") from None


def _compile(program: Any, ir: Any, device_name: str) -> Any:
    from .train import resolve_device

    device = resolve_device(device_name)  # "cuda" without CUDA: a DtgRuntimeError, exit 1
    if device.type == "cuda" and "LOCAL_RANK" in os.environ:  # one GPU per torchrun process
        device = type(device)("cuda", int(os.environ["LOCAL_RANK"]))
    return program.compile(device=str(device), model=ir.name)


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
    """``dtg train FILE …``: train, writing ``OUT/checkpoint.pt`` and ``OUT/metrics.jsonl``."""
    from .checkpoint import seed_everything
    from .train import CHECKPOINT, train

    overrides = parse_sets(args.overrides)  # cheap checks first: loading FILE takes a moment
    flags = _flags(args, ("steps", "batch", "lr", "seed"))
    program, ir = _program(args)
    out = Path(args.out) if args.out else Path("runs") / ir.name
    if out.exists() and not out.is_dir():
        raise _usage(f"--out {out} is a file, not a folder")
    if args.resume and not (out / CHECKPOINT).is_file():
        raise _usage(f"nothing to resume: no checkpoint at {out / CHECKPOINT}")
    if args.nproc is not None and args.nproc > 1 and "WORLD_SIZE" not in os.environ:
        from .distributed import launch

        return launch(_without_nproc(sys.argv[1:]), args.nproc)
    if args.init and not Path(args.init).is_file():
        raise _usage(f"no such checkpoint for --init: {args.init}")
    seed_everything(int(flags.get("seed", overrides.get("seed", ir.train.get("seed", 0)))))
    model = _compile(program, ir, args.device)  # seeded above: the initial weights are reproducible
    if args.init and not args.resume:
        from .checkpoint import effective_state, load_checkpoint

        if not hasattr(model, "init_from_parent"):
            raise _usage("--init needs a compiled dtg model")
        parent = load_checkpoint(Path(args.init), model.device)
        model.init_from_parent(effective_state(parent))
        weights = " (its EMA weights)" if parent.get("ema") else ""
        print(f"initialised from {args.init}{weights}")
    run = train(
        model,
        out=out,
        resume=args.resume,
        progress=not args.no_progress,
        overrides=overrides,
        detect_anomaly=args.detect_anomaly,
        force=args.force,
        **flags,
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


def _restore(args: argparse.Namespace) -> tuple[Any, Any, dict[str, Any]]:
    """Load FILE, compile it and load ``--checkpoint`` into it (EMA weights when there are)."""
    from .checkpoint import check_source, load_checkpoint, restore_model

    if args.n < 1:
        raise _usage(f"-n must be at least 1, got {args.n}")
    if not Path(args.checkpoint).is_file():
        raise _usage(f"no such checkpoint: {args.checkpoint}")
    program, ir = _program(args)
    model = _compile(program, ir, args.device)
    content = load_checkpoint(args.checkpoint, model.device)
    changed = check_source(content, program, force=True)
    if changed:
        print(f"dtg: note: {changed}", file=sys.stderr)
    restore_model(model, content, use_ema=True)
    model.eval()
    return program, model, content


def _reference(model: Any, n: int, seed: int) -> Any:
    """Held-out data (data models) or exact target samples (built-in targets), else ``None``."""
    import torch

    from .train import DATA_SPLIT_SEED

    if model.needs_data:
        return model.dataset(DATA_SPLIT_SEED).test[:n]
    reward = getattr(model.ir, "reward", None)
    if reward is not None and getattr(reward, "target", None):
        from ..targets import TARGETS

        return TARGETS[reward.target].sample(n, torch.Generator().manual_seed(seed + 1))
    return None


def _save_npy(path: Path, array: Any) -> None:
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            import numpy as np

            np.save(file, array)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def cmd_sample(args: argparse.Namespace) -> int:
    """``dtg sample FILE --checkpoint CKPT [-n N] [-o OUT.npy] [--plot OUT.png]``."""
    from .checkpoint import seed_everything
    from .plots import plot_samples

    for target in (args.output, args.plot):
        if target and not Path(target).resolve().parent.is_dir():
            raise _usage(f"the folder of {target} does not exist")
    _, model, content = _restore(args)
    seed_everything(args.seed)
    samples = model.sample(args.n)
    output = args.output or (
        None if args.plot else str(Path(args.checkpoint).parent / "samples.npy")
    )
    if output:
        _save_npy(Path(output), samples.detach().cpu().numpy())
        print(f"wrote {args.n} samples of shape {tuple(samples.shape[1:])} to {output}")
    if args.plot:
        title = f"{model.ir.name} (step {content['step']})"
        reference = _reference(model, args.n, args.seed)
        plot_samples(samples, model.ir.message.space, args.plot, reference=reference, title=title)
        print(f"wrote {args.plot}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    """``dtg eval FILE --checkpoint CKPT [--json] [-n N]``: the metrics of DESIGN.md §6."""
    from .evaluate import evaluate

    _, model, content = _restore(args)
    if args.max_examples is not None and args.max_examples < 1:
        raise _usage(f"--max-examples must be at least 1, got {args.max_examples}")
    metrics = evaluate(model, n=args.n, seed=args.seed, max_examples=args.max_examples)
    head = {
        "model": model.ir.name,
        "checkpoint": str(args.checkpoint),
        "step": int(content["step"]),
    }
    if args.json:
        clean = {
            k: (v if not isinstance(v, float) or math.isfinite(v) else None)
            for k, v in metrics.items()
        }
        print(json.dumps({**head, **clean}, indent=2))
        return 0
    rows = [(k, str(v)) for k, v in head.items()]
    rows += [(k, f"{v:.6g}" if isinstance(v, float) else str(v)) for k, v in metrics.items()]
    width = max(len(k) for k, _ in rows)
    print("\n".join(f"{k:<{width}}  {v}" for k, v in rows))
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``train``, ``sample`` and ``eval`` to the ``dtg`` subcommands."""
    from ..check.objectives import TRAIN_OPTIONS

    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("file", metavar="FILE", help="the .dtg file")
        parser.add_argument("--model", help="the model to use (default: the file's last)")
        parser.add_argument("--device", default="auto", help="auto (default), cpu or cuda")

    train = commands.add_parser(
        "train", help="train a model (writes DIR/checkpoint.pt, DIR/metrics.jsonl)"
    )
    common(train)
    train.add_argument("--steps", type=int, metavar="N", help="total steps")
    train.add_argument("--batch", type=int, metavar="B", help="batch size")
    train.add_argument("--lr", type=float, metavar="LR", help="learning rate")
    train.add_argument("--out", metavar="DIR", help="run folder (default: runs/<model>)")
    train.add_argument("--seed", type=int, metavar="S", help="random seed")
    train.add_argument("--resume", action="store_true", help="continue from DIR/checkpoint.pt")
    train.add_argument("--force", action="store_true", help="resume even if FILE changed")
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
    train.add_argument("--no-progress", action="store_true", help="no progress bar or lines")
    train.set_defaults(run=cmd_train)

    for name, run, help_ in (
        ("sample", cmd_sample, "draw samples from a trained model"),
        ("eval", cmd_eval, "evaluate a trained model (NELBO, bits/dim, MMD, log Z …)"),
    ):
        parser = commands.add_parser(name, help=help_)
        common(parser)
        parser.add_argument("--checkpoint", required=True, metavar="CKPT", help="checkpoint.pt")
        parser.add_argument("-n", type=int, default=2000, metavar="N", help="samples (2000)")
        parser.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (0)")
        if name == "sample":
            parser.add_argument("-o", "--output", metavar="OUT.npy", help="write samples here")
            parser.add_argument("--plot", metavar="OUT.png", help="draw samples beside data")
        else:
            parser.add_argument("--json", action="store_true", help="print JSON, not a table")
            parser.add_argument(
                "--max-examples", type=int, metavar="N", help="score N held-out examples (all)"
            )
        parser.set_defaults(run=run)

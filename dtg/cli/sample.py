"""``dtg sample FILE --checkpoint CKPT [-n N] [-o OUT.npy] [--plot OUT.png] [--levels K]``.

Draws samples by ancestral sampling (or, with ``--levels K [--eta E]``, by few-step respaced
DDIM sampling of a linear-Gaussian model, :mod:`dtg.runtime.ddim`). The samples go to ``OUT.npy`` (default: ``samples.npy`` beside the checkpoint, unless only a plot
is asked for); ``--plot`` draws them beside held-out data or exact target samples.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import DtgRuntimeError
from ..targets import TARGETS
from .errors import usage
from .files import write_atomic
from .models import add_checkpoint_arguments, add_model_arguments, restore
from .printing import npy_bytes

__all__ = ["register", "cmd_sample"]


def _reference(model: Any, n: int, seed: int) -> Any:
    """Held-out data (data models) or exact target samples (built-in targets), else ``None``."""
    import torch  # heavy: torch itself

    from ..runtime.train import DATA_SPLIT_SEED  # heavy: imports torch

    if model.needs_data:
        return model.dataset(DATA_SPLIT_SEED).test[:n]
    reward = getattr(model.ir, "reward", None)
    if reward is not None and getattr(reward, "target", None):
        return TARGETS[reward.target].sample(n, torch.Generator().manual_seed(seed + 1))
    return None


def _refuse_non_finite(samples: Any, checkpoint: str, content: dict[str, Any]) -> None:
    """No NaN or infinite sample is written: the weights (finite, as the checkpoint's schema
    requires) may still overflow, and a file of NaNs is no answer.

    :raises DtgRuntimeError: naming the checkpoint and how many values are not finite.
    """
    import torch  # heavy: torch itself

    if not samples.is_floating_point():
        return
    bad = int((~torch.isfinite(samples)).sum())
    if bad:
        raise DtgRuntimeError(
            f"the model of checkpoint {checkpoint} (step {content['step']}) sampled {bad} NaN or "
            f"infinite value{'s' if bad != 1 else ''} of {samples.numel()}; nothing was written",
            hints=["its weights overflow: sample from an earlier checkpoint, or retrain"],
        )


def cmd_sample(args: argparse.Namespace) -> int:
    """Draw ``-n`` samples and write them (and a picture with ``--plot``).

    :param args: the parsed ``dtg sample`` arguments.
    :returns: 0.
    :raises UsageError: for a missing output folder, checkpoint or file, or ``-n`` below 1.
    """
    from ..runtime.checkpoint import checkpoint_file, seed_everything  # heavy: imports torch
    from ..runtime.plots import plot_samples  # heavy: imports torch

    for target in (args.output, args.plot):
        if target and not Path(target).resolve().parent.is_dir():
            raise usage(f"the folder of {target} does not exist")
    checkpoint_file(args.checkpoint)  # a folder is said to be one, not "no such checkpoint"
    _, model, content = restore(args)
    seed_everything(args.seed)
    if args.levels is None:
        if args.eta is not None:
            raise usage("--eta goes with --levels K (few-step sampling)")
        samples = model.sample(args.n)
    else:
        from ..runtime.ddim import ddim_sample  # heavy: imports torch

        samples = ddim_sample(model, args.n, args.levels, 0.0 if args.eta is None else args.eta)
    _refuse_non_finite(samples, args.checkpoint, content)
    output = args.output or (
        None if args.plot else str(Path(args.checkpoint).parent / "samples.npy")
    )
    if output:
        write_atomic(Path(output), npy_bytes(samples.detach().cpu().numpy()))
        print(f"wrote {args.n} samples of shape {tuple(samples.shape[1:])} to {output}")
    if args.plot:
        title = f"{model.ir.name} (step {content['step']})"
        reference = _reference(model, args.n, args.seed)
        plot_samples(samples, model.ir.message.space, args.plot, reference=reference, title=title)
        print(f"wrote {args.plot}")
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``sample`` to the ``dtg`` subcommands.

    :param commands: the subparsers of the main parser.
    """
    parser = commands.add_parser("sample", help="draw samples from a trained model")
    add_model_arguments(parser)
    add_checkpoint_arguments(parser)
    parser.add_argument("-o", "--output", metavar="OUT.npy", help="write samples here")
    parser.add_argument("--plot", metavar="OUT.png", help="draw samples beside data")
    parser.add_argument(
        "--levels", type=int, metavar="K",
        help="few-step sampling of a linear-Gaussian model: K evenly spaced levels (DDIM)",
    )  # fmt: skip
    parser.add_argument(
        "--eta", type=float, metavar="E",
        help="with --levels: 0 deterministic DDIM (default), 1 the skipped chain's posterior",
    )  # fmt: skip
    parser.set_defaults(run=cmd_sample)

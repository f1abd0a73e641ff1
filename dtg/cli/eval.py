"""``dtg eval FILE --checkpoint CKPT [--json] [-n N]``: the metrics of DESIGN.md §6.

Prints a table (or JSON with ``--json``; a non-finite number becomes ``null``) of the model, the
checkpoint, its step and what :func:`dtg.runtime.evaluate.evaluate` measures.
"""

from __future__ import annotations

import argparse
import json
import math

from .errors import usage
from .models import add_checkpoint_arguments, add_model_arguments, restore

__all__ = ["register", "cmd_eval"]


def cmd_eval(args: argparse.Namespace) -> int:
    """Evaluate the trained model and print its metrics.

    :param args: the parsed ``dtg eval`` arguments.
    :returns: 0.
    :raises UsageError: for a missing checkpoint or file, or ``-n``/``--max-examples`` below 1.
    """
    from ..runtime.checkpoint import checkpoint_file  # heavy: imports torch
    from ..runtime.evaluate import evaluate  # heavy: imports torch

    checkpoint_file(args.checkpoint)  # a folder is said to be one, not "no such checkpoint"
    _, model, content = restore(args)
    if args.max_examples is not None and args.max_examples < 1:
        raise usage(f"--max-examples must be at least 1, got {args.max_examples}")
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
    """Add ``eval`` to the ``dtg`` subcommands.

    :param commands: the subparsers of the main parser.
    """
    parser = commands.add_parser(
        "eval", help="evaluate a trained model (NELBO, bits/dim, MMD, log Z …)"
    )
    add_model_arguments(parser)
    add_checkpoint_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print JSON, not a table")
    parser.add_argument(
        "--max-examples", type=int, metavar="N", help="score N held-out examples (all)"
    )
    parser.set_defaults(run=cmd_eval)

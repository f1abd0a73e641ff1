"""``dtg eval FILE --checkpoint CKPT [--json] [-n N] [--seeds N]``: the metrics of DESIGN.md §6.

Prints a table (or JSON with ``--json``; a non-finite number becomes ``null``) of the model, the
checkpoint, its step and what :func:`dtg.runtime.evaluate.evaluate` measures. With ``--seeds N``
the evaluation runs with the seeds ``S, S+1, …, S+N-1`` (``S`` from ``--seed``) and each metric
is printed as mean ± standard error; the JSON gives each metric's ``mean``, ``sem`` and
per-seed ``values``.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from .errors import usage
from .models import add_checkpoint_arguments, add_model_arguments, restore
from .printing import json_safe, table

__all__ = ["register", "cmd_eval"]


def cmd_eval(args: argparse.Namespace) -> int:
    """Evaluate the trained model and print its metrics.

    :param args: the parsed ``dtg eval`` arguments.
    :returns: 0.
    :raises UsageError: for a missing checkpoint or file, ``-n``/``--max-examples`` below 1, or
        ``--seeds`` below 2.
    """
    from ..runtime.checkpoint import checkpoint_file  # heavy: imports torch
    from ..runtime.evaluate import evaluate, evaluate_seeds  # heavy: imports torch

    if args.seeds is not None and args.seeds < 2:
        raise usage(f"--seeds must be at least 2 (a standard error needs two), got {args.seeds}")
    checkpoint_file(args.checkpoint)  # a folder is said to be one, not "no such checkpoint"
    _, model, content = restore(args)
    if args.max_examples is not None and args.max_examples < 1:
        raise usage(f"--max-examples must be at least 1, got {args.max_examples}")
    head: dict[str, Any] = {
        "model": model.ir.name,
        "checkpoint": str(args.checkpoint),
        "step": int(content["step"]),
    }
    options = {"n": args.n, "max_examples": args.max_examples}
    if args.seeds is None:
        metrics = evaluate(model, seed=args.seed, **options)
        if args.json:
            print(json.dumps(json_safe({**head, **metrics}), indent=2))
            return 0
        rows = [(k, str(v)) for k, v in head.items()]
        rows += [(k, f"{v:.6g}" if isinstance(v, float) else str(v)) for k, v in metrics.items()]
        print(table(rows))
        return 0
    seeds = list(range(args.seed, args.seed + args.seeds))
    summary = evaluate_seeds(model, seeds, **options)
    head["seeds"] = seeds
    if args.json:
        print(json.dumps(json_safe({**head, **summary}), indent=2))
        return 0
    rows = [(k, ", ".join(map(str, v)) if k == "seeds" else str(v)) for k, v in head.items()]
    rows += [(k, f"{s['mean']:.6g} ± {s['sem']:.2g}") for k, s in summary.items()]
    print(table(rows))
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
    parser.add_argument(
        "--seeds",
        type=int,
        metavar="N",
        help="evaluate with N seeds (--seed, --seed + 1, …): mean ± standard error",
    )
    parser.set_defaults(run=cmd_eval)

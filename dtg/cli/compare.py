"""``dtg compare A.dtg B.dtg[:MODEL] … --steps N [--train-size n …] [--seeds K] [--out DIR]
[--eval-every M] [--eval-examples E] [--eval-levels K]``.

Trains each model on the same data split with the same budget (or reuses the runs already in
``--out``), scores them on the same held-out rows, and writes ``DIR/compare.json``,
``DIR/compare.md`` and the plots ``DIR/heldout_vs_steps.png`` and ``DIR/heldout_vs_size.png``
(:mod:`dtg.runtime.compare`, :mod:`dtg.runtime.compare_report`). A model is ``FILE`` (its last
model) or ``FILE:MODEL``. The table is printed too.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import usage
from .files import pick_model
from .models import compile_model

__all__ = ["register", "cmd_compare"]


def _entries(specs: list[str], device: str) -> list:
    from .. import program as program_module  # lazy: parsing and checking the files
    from ..runtime.compare import Entry  # heavy: imports torch

    entries, labels = [], set()
    for spec in specs:
        file, _, name = spec.rpartition(":") if not Path(spec).exists() else (spec, "", "")
        if not Path(file).is_file():
            raise usage(f"no such .dtg file: {file}")
        program = program_module.load(Path(file))
        ir = pick_model(program, name or None, file)
        if ir.name in labels:
            raise usage(f"model '{ir.name}' is named twice: compare each model once")
        labels.add(ir.name)

        def build(program=program, ir=ir):  # binds this entry's program and model
            return compile_model(program, ir, device)

        entries.append(Entry(ir.name, file, ir, build))
    return entries


def cmd_compare(args: argparse.Namespace) -> int:
    """Run the study and write its table and plots.

    :returns: 0.
    :raises UsageError: for bad counts, a size beyond the data, or a missing file.
    """
    from ..runtime.compare import run_study, summarise  # heavy: imports torch
    from ..runtime.compare_report import markdown_table, write_report  # heavy: matplotlib

    for flag, value in (("--steps", args.steps), ("--seeds", args.seeds)):
        if value < 1:
            raise usage(f"{flag} must be at least 1, got {value}")
    if any(size < 0 for size in args.train_size):
        raise usage("--train-size takes counts ≥ 1 (0 means all the training rows)")
    if len(set(args.train_size)) != len(args.train_size):
        raise usage(f"--train-size lists a size twice: {' '.join(map(str, args.train_size))}")
    if args.eval_every < 0 or args.eval_examples < 1 or args.eval_levels < 0:
        raise usage("--eval-every and --eval-levels take counts ≥ 0, --eval-examples one ≥ 1")
    eval_every = args.eval_every or max(1, args.steps // 20)
    entries = _entries(args.files, args.device)
    full = _full_size(entries[0])
    if max(args.train_size) > full:
        raise usage(f"--train-size {max(args.train_size)}: the data has {full} training rows")
    out = Path(args.out)
    seeds = list(range(args.seed, args.seed + args.seeds))
    records = run_study(
        entries, out, args.steps, args.train_size, seeds, eval_every, args.eval_examples,
        train_missing=not args.report_only, eval_levels=args.eval_levels,
    )  # fmt: skip
    if not records:
        raise usage(f"--report-only: no finished run in {out} for these models and options")
    rows = summarise(records)
    written = write_report(out, records, rows, full)
    print(markdown_table(rows, full), end="")
    print("wrote " + ", ".join(str(p) for p in written), file=sys.stderr)
    return 0


def _full_size(entry) -> int:
    from ..runtime.loop import DATA_SPLIT_SEED  # heavy: imports torch

    return entry.compile().dataset(DATA_SPLIT_SEED).n_train


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``compare`` to the ``dtg`` subcommands."""
    parser = commands.add_parser(
        "compare", help="train models of the same data alike and compare held-out bits"
    )
    parser.add_argument(
        "files", nargs="+", metavar="FILE[:MODEL]",
        help="the models (one is fine: several processes may share --out, one model each)",
    )  # fmt: skip
    parser.add_argument("--steps", type=int, required=True, metavar="N", help="steps per run")
    parser.add_argument(
        "--train-size", type=int, nargs="+", default=[0], metavar="n",
        help="training examples per run, a nested random subset (0 = all; several: a sweep)",
    )  # fmt: skip
    parser.add_argument("--seeds", type=int, default=1, metavar="K", help="seeds per run (1)")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="first seed (0)")
    parser.add_argument(
        "--eval-every", type=int, default=0, metavar="M",
        help="steps between held-out evaluations (default: steps / 20)",
    )  # fmt: skip
    parser.add_argument(
        "--eval-examples", type=int, default=500, metavar="E",
        help="held-out rows of each curve point (the final figure uses all of them)",
    )  # fmt: skip
    parser.add_argument(
        "--eval-levels", type=int, default=0, metavar="K",
        help="levels scored per held-out row on the curves, an unbiased estimate (0 = all)",
    )  # fmt: skip
    parser.add_argument("--out", default="runs/compare", metavar="DIR", help="runs/compare")
    parser.add_argument(
        "--report-only", action="store_true",
        help="train nothing: the table and plots of the runs already finished in --out",
    )  # fmt: skip
    parser.add_argument("--device", default="auto", help="auto (default), cpu or cuda")
    parser.set_defaults(run=cmd_compare)

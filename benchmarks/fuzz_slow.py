"""Run the front-end fuzzers of ``tests/test_fuzz.py`` from the command line, with statistics.

    .venv/bin/python benchmarks/fuzz_slow.py --cases 100000            # all generators mixed
    .venv/bin/python benchmarks/fuzz_slow.py --kind token --cases 5000 --seed 3
    .venv/bin/python benchmarks/fuzz_slow.py --statements 10000         # time a big file

Each input runs in a forked worker (memory limit, watchdog); the report gives the outcome
counts, the DtgError classes, CPU time per case, the known issues hit, and each new failure with
its shortest inputs (saved with ``--save DIR``). Exit status 1 when there is a new failure.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import test_fuzz as fz  # noqa: E402


def time_statements(count: int, profile: bool) -> None:
    """Parse and check one model with ``count`` statements; optionally profile the check."""
    import dtg
    from dtg.syntax import parse

    fz.warm_up()
    text = fz.many_statements(count)
    start = time.process_time()
    parse(text, "many.dtg")
    parsed = time.process_time() - start
    start = time.process_time()
    dtg.loads(text, file="many.dtg")
    checked = time.process_time() - start
    print(
        f"{count} statements ({len(text):,} bytes): parse {parsed:.2f} s CPU, "
        f"parse + check {checked:.2f} s CPU"
    )
    if profile:
        profiler = cProfile.Profile()
        profiler.enable()
        dtg.loads(text, file="many.dtg")
        profiler.disable()
        stats = pstats.Stats(profiler)
        stats.sort_stats("cumulative").print_stats(30)
        stats.sort_stats("tottime").print_stats(15)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--kind", choices=["mixed", "grammar", "token", "byte", "splice"], default="mixed"
    )
    parser.add_argument("--jobs", type=int, default=fz.JOBS, help="worker processes")
    parser.add_argument("--save", type=Path, help="write failing inputs here")
    parser.add_argument("--progress", type=int, default=5000, help="print every N cases")
    parser.add_argument("--statements", type=int, help="time one model with N statements")
    parser.add_argument("--profile", action="store_true", help="with --statements: cProfile")
    args = parser.parse_args()

    if args.statements:
        time_statements(args.statements, args.profile)
        return 0
    if args.kind == "mixed":
        cases = fz.mixed_cases(args.seed, args.cases)
    elif args.kind == "grammar":
        cases = fz.grammar_cases(args.seed, args.cases)
    else:
        cases = fz.mutation_cases(args.seed, args.cases, args.kind)
    fz.warm_up()
    workers = [fz.Worker() for _ in range(args.jobs)]
    os.environ.setdefault("DTG_FUZZ_PROGRESS", str(args.progress))
    try:
        report = fz.fuzz(cases, workers, args.save)
    finally:
        for worker in workers:
            worker.close()
    print(report.summary())
    print("DtgError classes:", dict(report.errors.most_common()))
    return 1 if report.failures else 0


if __name__ == "__main__":
    raise SystemExit(main())

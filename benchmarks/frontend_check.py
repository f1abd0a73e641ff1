"""Wall time of ``dtg check`` as a whole process, next to ``import sympy, lark, numpy``. Prints JSON.

Issue 17's front-end goal: ``dtg check examples/ddpm_moons.dtg`` in ≤ 0.6 s on this machine. The
time of a fresh process is what a user waits for, so each figure is a whole
``python -m dtg check FILE`` (and ``python -c 'import dtg'``) started from scratch; the baseline
``python -c 'import sympy, lark, numpy'`` is timed in the same run, interleaved with them (the
order reverses every round), so that the ratio of medians holds on a loaded machine where the
absolute figures drift (also given: the ratio of the minimums, and the median over rounds of each
round's own check/baseline ratio, both less sensitive to other load; and the CPU time, user +
system, of every run, which waiting for a core does not inflate). Every command runs with
``OMP_NUM_THREADS=1``, its working folder at ``--root`` and ``--root`` first on ``PYTHONPATH``:
which tree ``import dtg`` takes is checked before timing (an editable install of another checkout
must not answer). One untimed warm-up run of each command writes the bytecode caches first.

``-X importtime`` of the check command (``--importtime-runs`` runs, the median per module) gives
the ten imports with the largest cumulative time, and the ten largest top-level ones.

    python benchmarks/frontend_check.py --out benchmarks/results/frontend_check_after.json
    git worktree add /tmp/dtg_before 09b2905
    python benchmarks/frontend_check.py --root /tmp/dtg_before \\
        --out benchmarks/results/frontend_check_before.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASELINE = "import sympy, lark, numpy"


def environment(root: Path) -> dict[str, str]:
    """The environment every timed command runs in: ``root`` first on the path, one thread.

    :param root: the source tree whose ``dtg`` package is to be imported.
    :returns: a copy of ``os.environ`` with ``PYTHONPATH`` and ``OMP_NUM_THREADS`` set.
    """
    env = dict(os.environ)
    rest = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(root) + (os.pathsep + rest if rest else "")
    env["OMP_NUM_THREADS"] = "1"
    env.pop("PYTHONSTARTUP", None)
    return env


def commands(python: str, example: str) -> dict[str, list[str]]:
    """The three timed commands, by name.

    :param python: the interpreter to run.
    :param example: the ``.dtg`` file to check, relative to the source root.
    :returns: ``check``, ``baseline`` and ``import_dtg`` argument lists.
    """
    return {
        "check": [python, "-m", "dtg", "check", example],
        "baseline": [python, "-c", BASELINE],
        "import_dtg": [python, "-c", "import dtg"],
    }


def verify_tree(python: str, root: Path, env: dict[str, str]) -> dict[str, str]:
    """Make sure ``import dtg`` and ``-m dtg`` in the timed setting take ``root``'s package.

    :param python: the interpreter to run.
    :param root: the expected source tree.
    :param env: the environment the commands run in.
    :returns: the files that answered ``import dtg`` and ``import dtg.cli``.
    :raises SystemExit: when another tree answers.
    """
    probe = "import dtg, dtg.cli; print(dtg.__file__); print(dtg.cli.__file__)"
    done = subprocess.run(
        [python, "-c", probe], cwd=root, env=env, capture_output=True, text=True, check=True
    )
    package, cli = done.stdout.split()
    expected = (root / "dtg").resolve()
    for found in (package, cli):
        if not Path(found).resolve().is_relative_to(expected):
            raise SystemExit(f"import dtg took {found}, not the tree under {root}")
    return {"dtg": package, "dtg.cli": cli}


def revision(root: Path) -> dict[str, object]:
    """The git commit of ``root`` and whether its tracked files differ from it.

    :param root: the source tree.
    :returns: ``commit`` and ``dirty`` (empty when ``root`` is no git checkout).
    """

    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "HEAD")
    if not commit:
        return {}
    return {"commit": commit, "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(argv: list[str], root: Path, env: dict[str, str]) -> tuple[float, float]:
    """Run one command to completion and return its wall and CPU time in seconds.

    The CPU time (user + system of the finished child) hardly grows when other processes share
    the cores, where the wall time does: on a loaded machine it is the steadier figure.

    :param argv: the command.
    :param root: its working folder.
    :param env: its environment.
    :returns: the wall time (start of ``Popen`` to exit) and the child's CPU time.
    :raises SystemExit: when the command fails (a broken tree is no measurement).
    """
    cpu = _children_cpu()
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    cpu = _children_cpu() - cpu
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return wall, cpu


def summary(times: list[float]) -> dict[str, object]:
    """Median, min and max of a list of wall times, in seconds.

    :param times: the wall times.
    :returns: the figures, rounded to the millisecond's tenth, and the times themselves.
    """
    return {
        "median_s": round(statistics.median(times), 4),
        "min_s": round(min(times), 4),
        "max_s": round(max(times), 4),
        "runs": len(times),
        "times_s": [round(t, 4) for t in times],
    }


def interleaved(
    argvs: dict[str, list[str]], root: Path, env: dict[str, str], runs: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Time every command ``runs`` times, one of each per round, the order reversed every round.

    :param argvs: the commands by name.
    :param root: their working folder.
    :param env: their environment.
    :param runs: the number of rounds.
    :returns: the wall times and the CPU times, each by command name.
    """
    names = list(argvs)
    for name in names:  # warm-up: bytecode caches, file-system cache
        run_once(argvs[name], root, env)
    walls: dict[str, list[float]] = {name: [] for name in names}
    cpus: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(runs):
        for name in names if round_ % 2 == 0 else reversed(names):
            wall, cpu = run_once(argvs[name], root, env)
            walls[name].append(wall)
            cpus[name].append(cpu)
    return walls, cpus


def parse_importtime(stderr: str) -> list[tuple[str, int, int, int]]:
    """Read ``-X importtime`` output.

    :param stderr: the interpreter's standard error.
    :returns: ``(module, self_us, cumulative_us, depth)`` per import, depth 0 for top level.
    """
    rows = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "[us]" in line:
            continue
        self_us, cumulative_us, name = line[len("import time:") :].split("|", 2)
        depth = (len(name) - len(name.lstrip(" ")) - 1) // 2
        rows.append((name.strip(), int(self_us), int(cumulative_us), depth))
    return rows


def import_profile(argv: list[str], root: Path, env: dict[str, str], runs: int, top: int) -> dict:
    """The largest imports of a command by cumulative time, median over ``runs`` runs.

    :param argv: the command (``-X importtime`` is inserted after the interpreter).
    :param root: its working folder.
    :param env: its environment.
    :param runs: how many profiled runs.
    :param top: how many modules to list.
    :returns: ``top_cumulative`` (any depth), ``top_level`` (depth 0) and the total.
    """
    profiled = [argv[0], "-X", "importtime", *argv[1:]]
    cumulative: dict[str, list[int]] = {}
    depth: dict[str, int] = {}
    totals = []
    for _ in range(runs):
        done = subprocess.run(profiled, cwd=root, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(profiled)} failed:\n{done.stderr[-2000:]}")
        rows = parse_importtime(done.stderr)
        totals.append(sum(c for _, _, c, d in rows if d == 0))
        for name, _, cum, level in rows:
            cumulative.setdefault(name, []).append(cum)
            depth[name] = level
    medians = {name: statistics.median(values) for name, values in cumulative.items()}

    def table(names: list[str]) -> list[dict[str, object]]:
        ranked = sorted(names, key=lambda n: -medians[n])[:top]
        return [{"module": n, "cumulative_ms": round(medians[n] / 1e3, 1)} for n in ranked]

    return {
        "command": " ".join(profiled[1:]),
        "runs": runs,
        "total_top_level_ms": round(statistics.median(totals) / 1e3, 1),
        "top_cumulative": table(list(medians)),
        "top_level": table([n for n in medians if depth[n] == 0]),
        "torch_imported": "torch" in medians,
        "pyro_imported": "pyro" in medians,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--python", default=sys.executable, help="interpreter to time")
    parser.add_argument("--root", type=Path, default=ROOT, help="source tree put on PYTHONPATH")
    parser.add_argument("--example", default="examples/ddpm_moons.dtg", help="relative to --root")
    parser.add_argument("--runs", type=int, default=20, help="timed runs of each command")
    parser.add_argument("--importtime-runs", type=int, default=3, help="0 to skip -X importtime")
    parser.add_argument("--top", type=int, default=10, help="imports listed")
    parser.add_argument("--label", default="", help="free text stored with the figures")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args()

    root = args.root.resolve()
    env = environment(root)
    argvs = commands(args.python, args.example)
    started = time.strftime("%Y-%m-%dT%H:%M:%S")
    load_before = os.getloadavg()
    answered = verify_tree(args.python, root, env)
    times, cpu_times = interleaved(argvs, root, env, args.runs)
    figures = {name: summary(values) for name, values in times.items()}
    cpu = {name: summary(values) for name, values in cpu_times.items()}
    cpu_medians = {name: cpu[name]["median_s"] for name in cpu}
    medians = {name: figures[name]["median_s"] for name in figures}
    results: dict[str, object] = {
        "label": args.label,
        "started": started,
        "root": str(root),
        **revision(root),
        "python": args.python,
        "python_version": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "imported_from": answered,
        "commands": {name: " ".join(argv[1:]) for name, argv in argvs.items()},
        "env": {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(root), "cwd": str(root)},
        "order": "interleaved, one of each per round, reversed every round; 1 warm-up each",
        **figures,
        "ratio_check_to_baseline": round(medians["check"] / medians["baseline"], 3),
        "ratio_import_dtg_to_baseline": round(medians["import_dtg"] / medians["baseline"], 3),
        "ratio_of_minimums_check_to_baseline": round(
            figures["check"]["min_s"] / figures["baseline"]["min_s"], 3
        ),
        "median_round_ratio_check_to_baseline": round(
            statistics.median(
                c / b for c, b in zip(times["check"], times["baseline"], strict=True)
            ),
            3,
        ),
        "check_minus_import_dtg_s": round(medians["check"] - medians["import_dtg"], 4),
        "cpu": cpu,
        "cpu_ratio_check_to_baseline": round(cpu_medians["check"] / cpu_medians["baseline"], 3),
        "cpu_ratio_import_dtg_to_baseline": round(
            cpu_medians["import_dtg"] / cpu_medians["baseline"], 3
        ),
        "goal_check_s": 0.6,
    }
    if args.importtime_runs > 0:
        results["importtime_check"] = import_profile(
            argvs["check"], root, env, args.importtime_runs, args.top
        )
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()

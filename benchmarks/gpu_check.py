"""The GPU check (issue 23): prove dtg's CUDA path and measure it in under five minutes.

Run through ``benchmarks/gpu_check.sh`` (it installs the carried wheels first; docs/gpu.md):

    bash benchmarks/gpu_check.sh --out $OUT        # on the lent GPU machine
    bash benchmarks/gpu_check.sh --cpu             # the CPU dry run, tiny sizes

Six phases, each in its own process under its own time budget (killed at the budget, so a hang
costs one phase), each merged into ``DIR/gpu.json`` as soon as it ends, with ``status`` (ok,
failed, skipped), ``reason`` and ``seconds``; a failed phase keeps its error's tail and the next
phase runs. ``environment``: versions, CUDA, the wheels; ``tests``: ``pytest -m device`` on the
device; ``train``: every example trained a few steps under ``dtg train --sync-check``;
``timings``: dtg's step against the hand-written one, fp32 and bf16 (``gpu_timings.py``);
``graphs``: the TB iteration as a CUDA graph and under ``torch.compile``; ``samples``: samples/s
of one model of each family.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import datetime
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PHASES = ("environment", "tests", "train", "timings", "graphs", "samples")
#: Seconds per phase on the GPU (280 in all) and in the CPU dry run (two busy cores); what a
#: phase leaves unused goes to the next ones, within the total budget.
BUDGET = {
    "cuda": {"environment": 20, "tests": 55, "train": 75, "timings": 45, "graphs": 60, "samples": 25},
    "cpu": {"environment": 60, "tests": 600, "train": 900, "timings": 300, "graphs": 240, "samples": 180},
}  # fmt: skip
#: Sizes of the two modes: training steps, sample counts, jobs of the train phase, timing sizes.
SIZES = {
    "cuda": {"train_steps": 50, "jobs": 8, "samples_n": 4096, "repeats": 20, "warmup": 5,
             "moons_batch": 512, "digits_batch": 256, "digits_width": 256, "masking_batch": 256,
             "masking_net": None, "tb_steps": 100, "tb_batch": 300, "big_batch": 1024,
             "big_width": 512, "compile_steps": 100, "compile_batch": 300},
    "cpu": {"train_steps": 3, "jobs": 1, "samples_n": 64, "repeats": 3, "warmup": 1,
            "moons_batch": 64, "digits_batch": 32, "digits_width": 64, "masking_batch": 8,
            "masking_net": "transformer(width = 16, depth = 1, heads = 2)", "tb_steps": 20,
            "tb_batch": 16, "big_batch": 64, "big_width": 64, "compile_steps": 5,
            "compile_batch": 8},
}  # fmt: skip
MARGIN = 6.0  # seconds a phase keeps back to write its results before it is killed


def tail(text: str, lines: int = 15, chars: int = 2000) -> str:
    """:returns: the last ``lines`` lines of ``text``, at most ``chars`` characters."""
    return "\n".join(text.strip().splitlines()[-lines:])[-chars:]


def write_json(path: Path, value: dict) -> None:
    """Write ``value`` to ``path`` atomically (a cut run leaves the last whole file)."""
    temp = path.with_name(path.name + ".tmp")
    temp.write_text(json.dumps(value, indent=2, default=str) + "\n")
    os.replace(temp, path)


class Phase:
    """What a phase's process is given: mode, sizes, its deadline; ``save`` writes its part."""

    def __init__(self, name: str, mode: str, out: Path, seconds: float) -> None:
        self.name, self.mode, self.out = name, mode, out
        self.sizes = SIZES[mode]
        self.device = "cuda" if mode == "cuda" else "cpu"
        self.deadline = time.monotonic() + seconds - MARGIN
        self.part: dict = {}
        self.path = out / f"part_{name}.json"

    def left(self) -> float:
        """:returns: seconds left before the phase should stop starting work."""
        return self.deadline - time.monotonic()

    def save(self) -> None:
        write_json(self.path, self.part)


# ------------------------------------------------------------------------------------ phases


def run_environment(ph: Phase) -> tuple[str, str | None]:
    """Versions, the device, the wheels, whether ``dot`` exists, what this dtg offers."""
    import platform
    from importlib import metadata

    import torch

    p = ph.part
    p["python"] = platform.python_version()
    p["torch"] = torch.__version__
    p["torch_cuda"] = torch.version.cuda
    p["cuda_available"] = torch.cuda.is_available()
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        p["device_name"] = props.name
        p["device_memory_gib"] = round(props.total_memory / 2**30, 1)
        p["capability"] = list(torch.cuda.get_device_capability(0))
        p["bf16_supported"] = torch.cuda.is_bf16_supported()
        p["tf32_matmul"] = torch.backends.cuda.matmul.allow_tf32
    p["wheels"] = os.environ.get("GPU_CHECK_WHEELS", "not run through gpu_check.sh")
    versions = {}
    for name in ("pyro-ppl", "pyro-api", "lark", "interegular", "graphviz", "numpy", "scipy",
                 "sympy", "scikit-learn", "matplotlib", "tqdm", "opt_einsum", "pytest",
                 "hypothesis"):  # fmt: skip
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    p["packages"] = versions
    import dtg

    p["dtg"] = f"{dtg.__version__} from {Path(dtg.__file__).parent}"
    p["dot"] = shutil.which("dot")
    p["rendering"] = (
        "Graphviz's dot is on PATH"
        if p["dot"]
        else "no Graphviz dot here: rendering tests stay out of the device subset"
    )
    p["sync_check_flag"] = sync_check_available()
    try:
        import dtg.runtime.net_execution  # noqa: F401

        p["precision_helper"] = "dtg.runtime.net_execution.TrainingNets"
    except ImportError:
        p["precision_helper"] = None
    ph.save()
    if ph.mode == "cuda" and not p["cuda_available"]:
        return "failed", "CUDA is not available to torch"
    return "ok", None


def sync_check_available() -> bool:
    """:returns: whether ``dtg train --help`` lists ``--sync-check``."""
    result = subprocess.run(
        [sys.executable, "-m", "dtg", "train", "--help"], capture_output=True, text=True
    )
    return "--sync-check" in result.stdout


def pytest_counts(output: str) -> dict[str, int]:
    """:returns: pytest's summary counts (passed, failed, skipped, deselected, errors …)."""
    lines = [ln for ln in output.strip().splitlines() if re.search(r"\d+ \w+.* in [\d.]+s", ln)]
    counts: dict[str, int] = {}
    for number, word in re.findall(r"(\d+) (\w+)", lines[-1] if lines else ""):
        counts[{"error": "errors", "warning": "warnings"}.get(word, word)] = int(number)
    return counts


def run_tests(ph: Phase) -> tuple[str, str | None]:
    """``DTG_TEST_DEVICE=<device> python -m pytest -m device -q -x -rs -p no:cacheprovider``."""
    env = {**os.environ, "DTG_TEST_DEVICE": ph.device}
    command = [sys.executable, "-m", "pytest", *"-m device -q -x -rs -p no:cacheprovider".split()]
    ph.part["command"] = f"DTG_TEST_DEVICE={ph.device} python " + " ".join(command[1:])
    try:
        result = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=max(5, ph.left())
        )
    except subprocess.TimeoutExpired as error:
        out = (error.stdout or b"").decode(errors="replace") if error.stdout else ""
        ph.part.update(counts=pytest_counts(out), output_tail=tail(out))
        return "failed", f"pytest ran past the phase budget ({ph.left() + MARGIN:.0f}s left)"
    out = result.stdout + result.stderr
    ph.part.update(returncode=result.returncode, counts=pytest_counts(out), output_tail=tail(out))
    if result.returncode == 5:
        return "skipped", "the device marker selects no test (pytest exit status 5)"
    if result.returncode != 0:
        return "failed", f"pytest exit status {result.returncode}"
    return "ok", None


def example_files() -> list[Path]:
    """:returns: every example model: ``examples/*.dtg`` and ``examples/*/*.dtg``."""
    return sorted((ROOT / "examples").glob("*.dtg")) + sorted((ROOT / "examples").glob("*/*.dtg"))


def train_one(ph: Phase, path: Path, sync: bool, scratch: Path) -> dict:
    """``python -m dtg train FILE`` for a few steps on the device; a run stopped by the sync
    check is run again without it (does it train at all?).

    :param sync: pass ``--sync-check``. :param scratch: the folder of the run folders.
    :returns: its record: status, seconds, final loss, the error's tail.
    """
    record = _train(ph, path, sync, scratch)
    if "--sync-check:" in record.get("error_tail", ""):
        again = _train(ph, path, False, scratch)
        record.update(sync_check_violation=True, without_sync_check=again["status"])
        if again["status"] != "ok":
            record["without_sync_check_error"] = again.get("error_tail") or again.get("reason")
    return record


def _train(ph: Phase, path: Path, sync: bool, scratch: Path) -> dict:
    name = str(path.relative_to(ROOT / "examples"))
    if ph.left() < 3:
        return {"status": "skipped", "reason": "phase budget spent"}
    command = [sys.executable, "-m", "dtg", "train", str(path), "--device", ph.device]
    command += ["--steps", str(ph.sizes["train_steps"]), "--out", str(scratch / name)]
    command += ["--force", "--no-progress"] + (["--sync-check"] if sync else [])
    start = time.monotonic()
    try:
        result = subprocess.run(
            command, cwd=ROOT, capture_output=True, text=True, timeout=max(3, ph.left())
        )
    except subprocess.TimeoutExpired:
        seconds = round(time.monotonic() - start, 2)
        return {"status": "failed", "reason": "timed out (phase budget)", "seconds": seconds}
    record: dict = {"seconds": round(time.monotonic() - start, 2)}
    out = result.stdout + result.stderr
    found = re.search(r"final loss (\S+) in ([\d.]+) s", out)
    if found:
        record["final_loss"] = float(found[1])
        record["train_seconds"] = float(found[2])
    if result.returncode == 0 and found and math.isfinite(record["final_loss"]):
        record["status"] = "ok"
    else:
        record.update(status="failed", returncode=result.returncode, error_tail=tail(out))
    return record


def run_train(ph: Phase) -> tuple[str, str | None]:
    """Every example, a few steps under ``--sync-check`` where ``dtg train`` has it."""
    sync = sync_check_available()
    ph.part["sync_check"] = True if sync else "flag not available"
    ph.part["steps"], ph.part["jobs"] = ph.sizes["train_steps"], ph.sizes["jobs"]
    examples = ph.part.setdefault("examples", {})
    lock = threading.Lock()
    with tempfile.TemporaryDirectory(prefix="gpu_check_train_") as scratch:

        def job(path: Path) -> None:
            record = train_one(ph, path, sync, Path(scratch))
            with lock:
                examples[str(path.relative_to(ROOT / "examples"))] = record
                ph.save()

        with concurrent.futures.ThreadPoolExecutor(ph.sizes["jobs"]) as pool:
            list(pool.map(job, example_files()))
    ok = sum(r["status"] == "ok" for r in examples.values())
    ph.part["ok"], ph.part["total"] = ok, len(examples)
    ph.part["sync_check_violations"] = sorted(
        k for k, r in examples.items() if r.get("sync_check_violation")
    )
    bad = sorted(k for k, r in examples.items() if r["status"] != "ok")
    if not bad:
        return "ok", None
    synced = ph.part["sync_check_violations"]
    trains = [k for k in synced if examples[k]["without_sync_check"] == "ok"]
    reason = f"{len(bad)} of {len(examples)} examples failed: {', '.join(bad)}"
    if synced:
        reason += (
            f"; {len(synced)} stopped by --sync-check (host syncs in the training step), "
            f"{len(trains)} of them train without it"
        )
    return "failed", reason


def run_phase(name: str, mode: str, out: Path, seconds: float) -> int:
    """The body of a phase's process: run it, record status and reason in its part file."""
    ph = Phase(name, mode, out, seconds)
    if name in ("timings", "graphs", "samples"):
        import gpu_timings

        runner = getattr(gpu_timings, f"run_{name}")
    else:
        runner = globals()[f"run_{name}"]
    try:
        status, reason = runner(ph)
    except Exception:  # noqa: BLE001 - the phase fails with its error's tail, the next one runs
        status, reason = "failed", tail(traceback.format_exc())
    ph.part.update(status=status, reason=reason)
    ph.save()
    return 0 if status != "failed" else 1


# ------------------------------------------------------------------------------------ driver


def launch(name: str, args, seconds: float) -> dict:
    """Run phase ``name`` in its own process group, killed after ``seconds``. :returns: its part."""
    out = Path(args.out)
    part_path = out / f"part_{name}.json"
    part_path.unlink(missing_ok=True)
    command = [sys.executable, __file__, "--phase", name, "--out", str(out)]
    command += ["--seconds", f"{seconds:.1f}"] + (["--cpu"] if args.cpu else [])
    start = time.monotonic()
    child = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    last = collections.deque(maxlen=30)

    def pump() -> None:
        for line in child.stdout:
            last.append(line.rstrip())
            print(f"  [{name}] {line.rstrip()}", flush=True)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    timed_out = False
    try:
        child.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
    reader.join(timeout=5)
    part = json.loads(part_path.read_text()) if part_path.exists() else {}
    part_path.unlink(missing_ok=True)
    if timed_out:
        part.update(status="failed", reason=f"killed at its budget of {seconds:.0f}s")
    elif "status" not in part:
        part.update(
            status="failed", reason=f"exit status {child.returncode}: {tail(chr(10).join(last))}"
        )
    part["seconds"] = round(time.monotonic() - start, 2)
    part["budget_s"] = round(seconds, 1)
    return part


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--cpu", action="store_true", help="the CPU dry run: tiny sizes")
    parser.add_argument(
        "--out", default=os.environ.get("OUT") or "runs/gpu_check", help="folder of gpu.json"
    )
    parser.add_argument("--phases", default=",".join(PHASES), help="a comma-separated subset")
    parser.add_argument(
        "--budget", type=float, default=None, help="total seconds (default 290; CPU 2400)"
    )
    parser.add_argument("--phase", choices=PHASES, help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=60.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    mode = "cpu" if args.cpu else "cuda"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(Path(__file__).parent))
    if args.phase:
        return run_phase(args.phase, mode, out, args.seconds)
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    unknown = [p for p in phases if p not in PHASES]
    if unknown:
        parser.error(f"unknown phase(s) {', '.join(unknown)}: choose from {', '.join(PHASES)}")
    budget = args.budget if args.budget is not None else (290.0 if mode == "cuda" else 2400.0)
    if budget <= 0:
        parser.error("--budget must be positive")
    path = out / "gpu.json"
    report = json.loads(path.read_text()) if path.exists() else {}
    if report.get("mode") not in (None, mode):
        report = {}  # a CUDA report is not merged with a CPU dry run
    report.update(mode=mode, budget_s=budget, command=" ".join(sys.argv))
    report["started"] = datetime.datetime.now().isoformat(timespec="seconds")
    report.setdefault("phases", {})
    end = time.monotonic() + budget
    spare = 0.0  # seconds earlier phases left unused
    print(
        f"gpu_check: {mode} mode, {budget:.0f}s, phases {', '.join(phases)} -> {path}", flush=True
    )
    for name in phases:
        seconds = min(BUDGET[mode][name] + spare, end - time.monotonic())
        if seconds < 10:
            part = {"status": "skipped", "reason": "the total budget is spent", "seconds": 0.0}
        else:
            print(f"gpu_check: phase {name} (budget {seconds:.0f}s)", flush=True)
            part = launch(name, args, seconds)
        report["phases"][name] = part
        spare = max(0.0, seconds - part["seconds"])
        report["elapsed_s"] = round(budget - (end - time.monotonic()), 1)
        write_json(path, report)
        print(f"gpu_check: phase {name}: {part['status']} in {part['seconds']}s", flush=True)
    import gpu_timings  # the summary's figures (it imports torch: not before the phases)

    print(f"\ngpu_check summary ({mode}):", *gpu_timings.summary_lines(report), sep="\n")
    print(f"\nJSON: {path}")
    return 0 if all(p["status"] != "failed" for p in report["phases"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())

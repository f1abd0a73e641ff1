"""Phases ``timings`` and ``graphs`` of the GPU check (``gpu_check.py``).

``timings``: per-step times of dtg's training step against the same step written by hand,
interleaved in one process, medians and the median per-pair ratio, in fp32 and bf16: denoising
on moons and digits (``overhead_denoising.py``), masking on digits (``overhead_masking.py``),
trajectory balance on 25GMM (``samplers.py``'s ``speed`` part), and a GPU-sized digits row
(batch 1024, MLP width 512) where bf16 can show. dtg's bf16 step is what its training loop runs
for ``precision = "bf16"`` (:func:`timing.dtg_precision`); the hand-written one runs under
``torch.autocast``.

``samples``: samples per second of ``model.sample(n)`` for one (untrained) model of each
family: denoising, masking, ELBO (a VAE), a TB sampler.

``graphs``: the TB iteration (the generation level loop, its backward and the Adam step) captured
as one CUDA graph against the same iteration run eagerly, for the hand-written loop and dtg's
(CUDA only); then ``torch.compile`` on that one workload — dtg's ``compile = true`` (its nets
compiled, the level loop eager) — with the compile seconds reported.
"""

from __future__ import annotations

import contextlib
import functools
import statistics
import time
import traceback
from typing import Any

import overhead_denoising as od
import overhead_masking as om
import samplers
import torch
from timing import dtg_precision, hand_precision, interleaved, summary, synchronize

import dtg

ROOT = samplers.ROOT
#: One model of each family for the samples phase.
FAMILIES = {
    "denoising": "ddpm_digits.dtg",
    "masking": "mdlm_digits.dtg",
    "elbo_vae": "vae_digits.dtg",
    "tb_sampler": "gmm25_tb.dtg",
}
SIGMA2, LR = 5.0, 1e-3  # the TB benchmark's reference-process variance and learning rate


def _tb_model(steps: int, device: str):
    """``gmm25_tb.dtg`` with ``steps`` levels on ``device`` (seeded: same weights each call)."""
    text = samplers.set_steps((samplers.EXAMPLES / "gmm25_tb.dtg").read_text(), steps)
    torch.manual_seed(0)
    model = dtg.loads(text).compile(device)
    model.objective.log_z_started.fill_(True)  # log Z starts at 0 in both (samplers.py's speed)
    return model


def tb_pair(device: str, steps: int, batch: int, precision: str, repeats: int, warmup: int) -> dict:
    """dtg's TB iteration against ``samplers.HandTB`` with the same MLP architecture."""
    dev = torch.device(device)
    model = _tb_model(steps, device)
    ours, note = dtg_precision(model, dev, precision)
    theirs = hand_precision(dev, precision)
    dtg_tb = samplers.DtgTB(model, LR)
    hand = samplers.HandTB(_tb_model(steps, device).nets["drift"], steps, SIGMA2, LR, dev)
    times = interleaved(
        {"dtg": lambda: dtg_tb.step(batch, ours), "hand": lambda: hand.step(batch, theirs)},
        repeats,
        warmup,
        dev,
    )
    return {"steps_T": steps, "batch": batch, "dtg_precision": note, **summary(times)}


def _row(ph, name: str, fn, *args: Any, **kwargs: Any) -> None:
    """Run one measurement into ``ph.part["rows"][name]``; a failure is recorded, not raised."""
    rows = ph.part.setdefault("rows", {})
    if ph.left() < 3:
        rows[name] = {"status": "skipped", "reason": "phase budget spent"}
    else:
        start = time.monotonic()
        try:
            rows[name] = {"status": "ok", **fn(*args, **kwargs)}
        except Exception:  # noqa: BLE001 - one row's failure is recorded, the others run
            rows[name] = {"status": "failed", "error_tail": _tail(traceback.format_exc())}
        rows[name]["wall_s"] = round(time.monotonic() - start, 2)
    ph.save()


def _tail(text: str) -> str:
    return "\n".join(text.strip().splitlines()[-12:])[-1500:]


def _denoising(device: str, file: str | None, width: int, batch: int, precision: str, s: dict):
    if file is None:
        text = od.digits_text(width)
        model = dtg.loads(text, file=str(ROOT / "digits_bench.dtg")).compile(device)
    else:
        model = dtg.load(ROOT / "examples" / file).compile(device)
    out = od.measure(model, batch, s["repeats"], warmup=s["warmup"], precision=precision)
    return {"model": file or f"digits MLP 3 x {width}", **out}


def run_timings(ph) -> tuple[str, str | None]:
    """The ``timings`` phase: every row in fp32 and bf16, the GPU-sized row last."""
    s, device = ph.sizes, ph.device
    ph.part["note"] = "ratio_median = dtg / hand-written per interleaved pair; < 1: dtg faster"
    for precision in ("fp32", "bf16"):
        _row(ph, f"denoising_moons_{precision}", _denoising, device, "ddpm_moons.dtg", 0,
             s["moons_batch"], precision, s)  # fmt: skip
        _row(ph, f"denoising_digits_{precision}", _denoising, device, None, s["digits_width"],
             s["digits_batch"], precision, s)  # fmt: skip
        _row(ph, f"masking_digits_{precision}", om.overhead, s["masking_batch"], s["repeats"],
             s["warmup"], s["masking_net"], device, precision)  # fmt: skip
        _row(ph, f"tb_gmm25_{precision}", tb_pair, device, s["tb_steps"], s["tb_batch"],
             precision, s["repeats"], s["warmup"])  # fmt: skip
    for precision in ("fp32", "bf16"):
        _row(ph, f"denoising_digits_gpu_sized_{precision}", _denoising, device, None,
             s["big_width"], s["big_batch"], precision, s)  # fmt: skip
    notes = {r.get("dtg_precision") for k, r in ph.part["rows"].items() if k.endswith("_bf16")}
    ph.part["dtg_bf16"] = "; ".join(sorted(n for n in notes if n))
    return _status(ph.part["rows"])


def _status(rows: dict) -> tuple[str, str | None]:
    bad = [k for k, r in rows.items() if r["status"] == "failed"]
    if bad:
        return "failed", f"failed: {', '.join(bad)}"
    skipped = [f"{k} ({r['reason']})" for k, r in rows.items() if r["status"] == "skipped"]
    return "ok", (f"skipped: {', '.join(skipped)}" if skipped else None)


# ------------------------------------------------------------------------------------ graphs


def _iteration(loss, optimizer, params: list):
    """One TB iteration with no host sync: loss, backward, gradient clip, Adam."""

    def run() -> torch.Tensor:
        value = loss()
        value.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        return value

    return run


def graphed(loss, groups: list[dict]) -> tuple[Any, torch.Tensor]:
    """Capture a whole TB iteration as a CUDA graph (PyTorch's whole-network capture: warm-up
    on a side stream, grads set to None, Adam ``capturable``). :returns: ``(graph, its loss)``."""
    optimizer = torch.optim.Adam(groups, capturable=True)
    params = [p for g in optimizer.param_groups for p in g["params"]]
    run = _iteration(loss, optimizer, params)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            optimizer.zero_grad(set_to_none=True)
            run()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    optimizer.zero_grad(set_to_none=True)
    with torch.cuda.graph(graph):
        static_loss = run()
    return graph, static_loss


def _eager(loss, groups: list[dict]):
    optimizer = torch.optim.Adam(groups)
    params = [p for g in optimizer.param_groups for p in g["params"]]
    run = _iteration(loss, optimizer, params)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        run()

    return step


@contextlib.contextmanager
def cached_gmm25_means():
    """Build gmm25's component means once per device and dtype while entered: dtg's target makes
    them from a Python list at every call, a host-to-device copy that a CUDA graph cannot hold."""
    from dtg.targets import densities

    original = densities._gmm25_means
    densities._gmm25_means = functools.lru_cache(maxsize=8)(original)
    try:
        yield
    finally:
        densities._gmm25_means = original


CACHE_NOTE = "gmm25's means cached by the benchmark (dtg builds them from a list at every call)"


def graph_row(who: str, steps: int, batch: int, repeats: int, warmup: int) -> dict:
    """Eager against CUDA-graph replay of one TB iteration, ``who`` = ``hand`` or ``dtg``: dtg's
    loss is captured as it is first, then (if that fails) with gmm25's means cached; the
    hand-written loop always runs with them cached."""
    first_error = None
    if who == "dtg":
        try:
            return _graph_row(who, steps, batch, repeats, warmup)
        except Exception:  # noqa: BLE001 - recorded, then captured again with the cache
            first_error = _tail(traceback.format_exc())
            torch.cuda.synchronize()
    with cached_gmm25_means():
        out = _graph_row(who, steps, batch, repeats, warmup)
    out["capture_note"] = CACHE_NOTE
    if first_error:
        out["uncached_capture_error"] = first_error
    return out


def _graph_row(who: str, steps: int, batch: int, repeats: int, warmup: int) -> dict:

    def build():
        model = _tb_model(steps, "cuda")
        if who == "dtg":
            return (lambda: model.loss(batch)), model.param_groups(LR)
        hand = samplers.HandTB(model.nets["drift"], steps, SIGMA2, LR, torch.device("cuda"))
        return (lambda: hand.loss(batch)), [{"params": list(hand.net.parameters()), "lr": LR},
                                             {"params": [hand.log_z], "lr": 0.1}]  # fmt: skip

    eager = _eager(*build())
    start = time.perf_counter()
    graph, static_loss = graphed(*build())
    synchronize("cuda")
    capture_s = time.perf_counter() - start
    times = interleaved({"eager": eager, "graph": graph.replay}, repeats, warmup, "cuda")
    out = summary(times, "graph", "eager")
    out["speedup"] = round(1 / out.pop("ratio_median"), 3)
    finite = bool(torch.isfinite(static_loss).all())
    return {
        "steps_T": steps,
        "batch": batch,
        "capture_s": round(capture_s, 2),
        "loss_finite": finite,
        **out,
    }


def compile_row(device: str, steps: int, batch: int, repeats: int, warmup: int) -> dict:
    """dtg's TB iteration with its nets under ``torch.compile`` (the train option ``compile``,
    ``TrainingNets``; a hand-made ``torch.compile`` of each net's forward where that is absent)
    against eager; the first step's seconds are the compile seconds."""
    dev = torch.device(device)
    eager_model, model = _tb_model(steps, device), _tb_model(steps, device)
    try:
        from dtg.runtime.net_execution import TrainingNets

        nets = TrainingNets(model, "fp32", True, dev)
        context, how = (lambda: nets), "dtg.runtime.net_execution.TrainingNets(compile = true)"
    except ImportError:
        for net in model.nets.values():
            net.forward = torch.compile(net.forward)
        context, how = contextlib.nullcontext, "torch.compile of each net's forward (benchmark)"
    compiled, eager = samplers.DtgTB(model, LR), samplers.DtgTB(eager_model, LR)
    start = time.perf_counter()
    compiled.step(batch, context)
    synchronize(dev)
    compile_s = time.perf_counter() - start
    times = interleaved(
        {"compiled": lambda: compiled.step(batch, context), "eager": lambda: eager.step(batch)},
        repeats,
        warmup,
        dev,
    )
    out = summary(times, "compiled", "eager")
    out["speedup"] = round(1 / out.pop("ratio_median"), 3)
    return {"how": how, "steps_T": steps, "batch": batch, "compile_s": round(compile_s, 2), **out}


def run_graphs(ph) -> tuple[str, str | None]:
    """The ``graphs`` phase: CUDA graphs of the TB iteration (CUDA only), then torch.compile."""
    s, part = ph.sizes, ph.part
    rows = part.setdefault("rows", {})
    if ph.device == "cuda":
        for who in ("hand", "dtg"):
            _row(ph, f"cuda_graph_tb_{who}", graph_row, who, s["tb_steps"], s["tb_batch"],
                 s["repeats"], s["warmup"])  # fmt: skip
    else:
        rows["cuda_graph_tb"] = {"status": "skipped", "reason": "CUDA only"}
        ph.save()
    rows["compile_tb_dtg"] = {
        "status": "started",
        "note": "a kill here: compiling ran past the budget",
    }
    ph.save()
    _row(ph, "compile_tb_dtg", compile_row, ph.device, s["compile_steps"], s["compile_batch"],
         s["repeats"], s["warmup"])  # fmt: skip
    return _status(rows)


# ----------------------------------------------------------------------------------- samples


def run_samples(ph) -> tuple[str, str | None]:
    """Samples per second of ``model.sample(n)`` for one (untrained) model of each family."""
    n, failures = ph.sizes["samples_n"], []
    ph.part["n"] = n
    for family, file in FAMILIES.items():
        if ph.left() < 2:
            ph.part[family] = {"status": "skipped", "reason": "phase budget spent"}
            continue
        try:
            torch.manual_seed(0)
            model = dtg.load(ROOT / "examples" / file).compile(ph.device).eval()
            with torch.no_grad():
                model.sample(min(n, 16))  # warm-up: kernels, caches, lazy tables
                synchronize(ph.device)
                times = []
                while len(times) < 3 and (not times or ph.left() > 3 * max(times)):
                    start = time.perf_counter()
                    x = model.sample(n)
                    synchronize(ph.device)
                    times.append(time.perf_counter() - start)
            seconds = statistics.median(times)
            finite = bool(torch.isfinite(x.float()).all())
            ph.part[family] = {"status": "ok" if finite else "failed", "file": file,
                               "shape": list(x.shape), "seconds": round(seconds, 4),
                               "samples_per_s": round(n / seconds, 1), "repeats": len(times),
                               "finite": finite}  # fmt: skip
        except Exception:  # noqa: BLE001 - one family's failure is recorded, the others run
            ph.part[family] = {
                "status": "failed",
                "file": file,
                "error_tail": _tail(traceback.format_exc()),
            }
        if ph.part[family]["status"] != "ok":
            failures.append(family)
        ph.save()
    return ("failed", f"failed: {', '.join(failures)}") if failures else ("ok", None)


def headline(name: str, part: dict) -> list[str]:
    """:returns: the summary lines of one phase's headline figures."""
    if name == "environment":
        return [f"torch {part.get('torch')}, CUDA {part.get('cuda_available')}, "
                f"{part.get('device_name', 'no GPU')}, dot: {bool(part.get('dot'))}"]  # fmt: skip
    if name == "tests":
        return [f"counts {part.get('counts')}"]
    if name == "train":
        return [f"{part.get('ok')}/{part.get('total')} examples trained, sync check: "
                f"{part.get('sync_check')}"]  # fmt: skip
    if name == "samples":
        return [f"{k}: {v.get('samples_per_s')} samples/s" for k, v in part.items()
                if isinstance(v, dict) and "samples_per_s" in v]  # fmt: skip
    lines = []
    for row, r in part.get("rows", {}).items():
        if "ratio_median" in r:
            lines.append(f"{row}: dtg {r['dtg_ms']:.2f} ms, hand {r['hand_ms']:.2f} ms, "
                         f"ratio {r['ratio_median']:.3f}")  # fmt: skip
        elif "speedup" in r:
            extra = f", compile {r['compile_s']}s" if "compile_s" in r else ""
            lines.append(f"{row}: speedup x{r['speedup']}{extra}")
        else:
            lines.append(f"{row}: {r.get('status')} {r.get('reason', '')}".rstrip())
    return lines


def summary_lines(report: dict) -> list[str]:
    """:returns: one line per phase, with its headline figures."""
    lines = []
    for name, part in report["phases"].items():
        line = f"{name:12s} {part['status']:8s} {part.get('seconds', 0):7.1f}s"
        if part.get("reason"):
            line += f"  ({part['reason'].splitlines()[0][:120]})"
        lines.append(line)
        lines += [f"{'':14s}{x}" for x in headline(name, part)]
    return lines

"""``dtg eval --seeds N``: each metric's mean ± standard error over N seeds equals a hand
computation over N single-seed runs (``--seed s``) (issue 19)."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import pytest

import dtg.cli

ROOT = Path(__file__).resolve().parent.parent
MOONS = ROOT / "examples" / "ddpm_moons.dtg"

#: An imperfect sampler of N(0, I) (generation of variance 2): its metrics vary with the seed.
SAMPLER = """
model gauss {
  space x : real[2]
  steps T = 2
  reward logr(x) = -0.5 * sum(x^2) { log_z = log(2 * pi), modes = [[0, 0], [2, 2]] }
  schedule s(t) = (T - t) / (T - t + 1)
  net drift : (real[2], time) -> real[2] = mlp(hidden = [4])
  generate x[T]   = 0
  generate x[t-1] ~ Normal(x[t] + drift(x[t], t) / T, sqrt(2 / T))
  destroy  x[t]   ~ Normal(s(t) * x[t-1], sqrt(2 / T * s(t)))
  objective trajectory_balance
}
"""


@pytest.fixture
def cli(monkeypatch, tmp_path: Path, capsys):
    monkeypatch.chdir(tmp_path)

    def run(*args) -> tuple[int, str, str]:
        capsys.readouterr()
        code = dtg.cli.main([str(a) for a in args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def _trained(cli, file: Path, *extra) -> str:
    common = ("--steps", 2, "--device", "cpu", "--out", "run", "--no-progress", *extra)
    code, _, err = cli("train", file, *common)
    assert code == 0, err
    return "run/checkpoint.pt"


def _by_hand(cli, file: Path, checkpoint: str, seeds: list[int], *extra) -> dict[str, list]:
    runs = []
    for seed in seeds:
        code, out, err = cli(
            "eval", file, "--checkpoint", checkpoint, "--seed", seed, "--json", *extra
        )
        assert code == 0, err
        runs.append(json.loads(out))
    keys = [k for k in runs[0] if k not in ("model", "checkpoint", "step")]
    return {k: [run[k] for run in runs] for k in keys}


def _check_summary(summary: dict, single: dict[str, list]) -> int:
    assert set(single) <= set(summary)
    varied = 0
    for key, values in single.items():
        got = summary[key]
        assert got["values"] == pytest.approx(values, rel=1e-12, abs=1e-12), key
        assert got["mean"] == pytest.approx(statistics.fmean(values), rel=1e-12, abs=1e-12), key
        sem = statistics.stdev(values) / math.sqrt(len(values))
        assert got["sem"] == pytest.approx(sem, rel=1e-9, abs=1e-15), key
        varied += sem > 0
    return varied


def test_sampler_seeds_mean_and_sem_by_hand(cli, tmp_path: Path, one_thread) -> None:
    file = tmp_path / "gauss.dtg"
    file.write_text(SAMPLER)
    checkpoint = _trained(cli, file, "--batch", 16)
    single = _by_hand(cli, file, checkpoint, [4, 5, 6], "-n", 300)
    code, out, err = cli(
        "eval", file, "--checkpoint", checkpoint, "--seed", 4, "--seeds", 3, "-n", 300, "--json"
    )
    assert code == 0, err
    summary = json.loads(out)
    assert summary["seeds"] == [4, 5, 6] and summary["model"] == "gauss"
    varied = _check_summary(summary, single)
    assert {"log_z_elbo", "log_z_rw", "ess", "delta_log_z", "mode_coverage"} <= set(single)
    assert varied >= 4  # the estimates move between seeds
    assert summary["log_z"]["sem"] == 0.0  # the declared log Z does not

    code, out, _ = cli("eval", file, "--checkpoint", checkpoint, "--seeds", 3, "-n", 300)
    assert code == 0
    lines = {line.split()[0]: line for line in out.splitlines()}
    assert lines["seeds"].split(None, 1)[1] == "0, 1, 2"
    mean, _, sem = lines["log_z_rw"].split(None, 1)[1].partition(" ± ")
    assert math.isfinite(float(mean)) and float(sem) > 0


def test_data_model_seeds_mean_and_sem_by_hand(cli, one_thread) -> None:
    checkpoint = _trained(cli, MOONS, "--batch", 32)
    extra = ("-n", 128, "--max-examples", 128)
    single = _by_hand(cli, MOONS, checkpoint, [0, 1, 2], *extra)
    code, out, err = cli("eval", MOONS, "--checkpoint", checkpoint, "--seeds", 3, *extra, "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["seeds"] == [0, 1, 2]
    _check_summary(summary, single)
    assert summary["sliced_w"]["sem"] > 0 and summary["nelbo_nats"]["sem"] > 0


def test_seeds_below_two_is_a_usage_error(cli) -> None:
    code, _, err = cli("eval", MOONS, "--checkpoint", "c.pt", "--seeds", 1)
    assert code == 2 and "--seeds must be at least 2" in err


def test_summary_of_equal_values_is_exact() -> None:
    from dtg.runtime.evaluate import summarize_seeds

    # fsum([0.1] * 3) / 3 is 0.10000000000000002: equal values keep their value and sem 0
    summary = summarize_seeds([{"a": 0.1, "b": 1.0}, {"a": 0.1, "b": 2.0}, {"a": 0.1}])
    assert summary["a"] == {"mean": 0.1, "sem": 0.0, "values": [0.1, 0.1, 0.1]}
    assert math.isnan(summary["b"]["values"][2]) and math.isnan(summary["b"]["mean"])
    two = summarize_seeds([{"a": 1.0}, {"a": 3.0}])["a"]
    assert two["mean"] == 2.0 and two["sem"] == pytest.approx(1.0)  # stdev √2, over √2
    assert math.isnan(summarize_seeds([{"a": 1.0}])["a"]["sem"])

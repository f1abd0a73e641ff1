"""``dtg compare`` (issue 26): two tiny models of the same data, the table and plots, reuse, and
the refusal of models that declare different data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import moons_model

from dtg.cli import main
from dtg.runtime.checkpoint import load_checkpoint
from dtg.runtime.compare_report import markdown_table


def write(folder: Path, name: str, beta: str, data: str = "moons(n = 400)") -> str:
    path = folder / f"{name}.dtg"
    path.write_text(moons_model(name, beta, data, train="lr = 0.01"))
    return str(path)


def test_compare_writes_the_table_and_plots_and_reuses_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture, one_thread: None
) -> None:
    a, b = write(tmp_path, "slow", "0.05"), write(tmp_path, "fast", "0.3")
    out = tmp_path / "study"
    argv = ["compare", a, b, "--steps", "6", "--train-size", "50", "0", "--seeds", "2"]
    argv += ["--eval-every", "3", "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    result = json.loads((out / "compare.json").read_text())
    runs = result["runs"]
    assert len(runs) == 2 * 2 * 2 and not any(r["reused"] for r in runs)
    assert {(r["model"], r["train_size"], r["seed"]) for r in runs} == {
        (m, n, s) for m in ("slow", "fast") for n in (50, 0) for s in (0, 1)
    }
    assert all([c[0] for c in r["curve"]] == [3, 6] for r in runs)
    assert result["full_train_size"] == 360  # moons(400): 10 % held out
    for name in ("compare.md", "heldout_vs_steps.png", "heldout_vs_size.png"):
        assert (out / name).stat().st_size > 0
    assert printed == (out / "compare.md").read_text()
    summary = {(r["model"], r["train_size"]): r for r in result["summary"]}
    mine = [r["final_bits"] for r in runs if r["model"] == "slow" and r["train_size"] == 50]
    assert summary[("slow", 50)]["final_bits"] == pytest.approx(sum(mine) / 2)
    assert main(argv) == 0  # a second call reuses every run
    again = json.loads((out / "compare.json").read_text())["runs"]
    assert all(r["reused"] for r in again)
    assert [r["final_bits"] for r in again] == [r["final_bits"] for r in runs]
    more = ["compare", a, b, "--steps", "6", "--train-size", "50", "0", "--seeds", "3"]
    more += ["--eval-every", "3", "--out", str(out), "--report-only"]  # seed 2 was never run
    assert main(more) == 0
    report = json.loads((out / "compare.json").read_text())["runs"]
    assert len(report) == 8 and not (out / "slow" / "n50" / "seed2").exists()


def test_models_of_different_data_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    a = write(tmp_path, "moons_model", "0.1")
    b = write(tmp_path, "circles_model", "0.1", data="circles(n = 400)")
    assert main(["compare", a, b, "--steps", "2", "--out", str(tmp_path / "s")]) == 1
    error = capsys.readouterr().err
    assert "do not share their data" in error
    assert "moons_model" in error and "circles_model" in error and "circles(" in error
    assert not (tmp_path / "s").exists()


def test_bad_sizes_are_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    model, out = write(tmp_path, "m", "0.1"), str(tmp_path / "s")
    assert main(["compare", model, "--steps", "2", "--train-size", "50", "50", "--out", out]) == 2
    assert "lists a size twice" in capsys.readouterr().err
    assert main(["compare", model, "--steps", "2", "--train-size", "9999", "--out", out]) == 2
    assert "the data has 360 training rows" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_seeds_start_from_their_own_weights(tmp_path: Path, one_thread: None) -> None:

    out = tmp_path / "study"
    argv = ["compare", write(tmp_path, "m", "0.1"), "--steps", "1", "--seeds", "2"]
    assert main([*argv, "--out", str(out)]) == 0
    first, second = (
        load_checkpoint(out / "m" / "nall" / f"seed{s}" / "checkpoint.pt", torch.device("cpu"))
        for s in (0, 1)
    )
    name = next(iter(first["model"]))
    assert not torch.equal(first["model"][name], second["model"][name])


def test_a_changed_train_block_is_not_reused(tmp_path: Path, one_thread: None) -> None:
    path = write(tmp_path, "m", "0.1")
    out = str(tmp_path / "study")
    assert main(["compare", path, "--steps", "2", "--out", out]) == 0
    Path(path).write_text(Path(path).read_text().replace("lr = 0.01", "lr = 0.02"))
    assert main(["compare", path, "--steps", "2", "--out", out]) == 0
    runs = json.loads((tmp_path / "study" / "compare.json").read_text())["runs"]
    assert [r["reused"] for r in runs] == [False]


def test_the_table_sorts_by_size_then_bits() -> None:
    row = {"seeds": 1, "best_step": 5, "train_seconds": 1.0, "train_seconds_sd": float("nan")}
    rows = [
        {**row, "model": "b", "train_size": 0, "final_bits": 2.0, "final_bits_sd": 0.1,
         "best_bits": 1.9, "best_bits_sd": 0.1},
        {**row, "model": "a", "train_size": 0, "final_bits": 1.5, "final_bits_sd": 0.1,
         "best_bits": 1.4, "best_bits_sd": 0.1},
        {**row, "model": "c", "train_size": 10, "final_bits": 3.0, "final_bits_sd": float("nan"),
         "best_bits": 2.5, "best_bits_sd": float("nan")},
    ]  # fmt: skip
    lines = markdown_table(rows, full_size=99).splitlines()[2:]
    assert [line.split("|")[1].strip() for line in lines] == ["c", "a", "b"]
    assert "all (99)" in lines[1] and "1.500 ± 0.100" in lines[1] and "| 3.000 |" in lines[0]


def test_the_study_models_check_format_and_share_their_data() -> None:
    import dtg
    from dtg.fmt import format_source
    from dtg.runtime.compare import Entry, check_same_data

    files = sorted((Path(__file__).parents[1] / "examples" / "compare").glob("*.dtg"))
    assert [f.stem for f in files] == ["ar", "block", "masked", "uniform", "vae"]
    entries = []
    for file in files:
        text = file.read_text()
        assert format_source(text) == text, f"{file.name} is not dtg fmt clean"
        ir = dtg.load(file).models[-1]
        entries.append(Entry(ir.name, str(file), ir, None))
    check_same_data(entries)  # token models and the dequantised real VAE: one declaration


def test_real_pixels_without_dequantisation_do_not_compare_with_tokens() -> None:
    import dtg
    from dtg.errors import DtgRuntimeError
    from dtg.runtime.compare import Entry, check_same_data

    folder = Path(__file__).parents[1] / "examples" / "compare"
    token = dtg.load(folder / "masked.dtg").models[-1]
    text = (folder / "vae.dtg").read_text().replace("digits(dequantize = true)", "digits()")
    real = dtg.loads(text).models[-1]
    with pytest.raises(DtgRuntimeError, match="without dequantisation") as error:
        check_same_data([Entry("masked", "masked.dtg", token, None), Entry("vae", "v", real, None)])
    assert "dequantize = true" in " ".join(error.value.hints)


def test_eval_levels_is_a_run_option_and_older_runs_keep_their_default(
    tmp_path: Path, one_thread: None
) -> None:
    path = write(tmp_path, "m", "0.1")
    out = tmp_path / "study"
    argv = ["compare", path, "--steps", "2", "--eval-every", "1", "--out", str(out)]
    assert main(argv) == 0
    checkpoint = out / "m" / "nall" / "seed0" / "checkpoint.pt"
    content = torch.load(checkpoint, weights_only=True)
    del content["train_options"]["eval_levels"]  # as a run saved before the option existed
    torch.save(content, checkpoint)
    assert main(argv) == 0
    assert [r["reused"] for r in json.loads((out / "compare.json").read_text())["runs"]] == [True]
    assert main([*argv, "--eval-levels", "1"]) == 0  # another curve: trained again
    assert [r["reused"] for r in json.loads((out / "compare.json").read_text())["runs"]] == [False]
    lines = (checkpoint.parent / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["heldout_levels"] for x in lines if "heldout_levels" in x] == [1, 1]

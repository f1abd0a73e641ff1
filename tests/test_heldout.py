"""Held-out evaluation during training (issue 26): ``eval_every``, ``keep_best``, ``train_size``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import assert_resume_is_exact, moons_model

import dtg
from dtg.runtime.checkpoint import load_checkpoint
from dtg.runtime.heldout import HeldOut, training_rows
from dtg.runtime.loop import DATA_SPLIT_SEED


def compile_model(folder: Path, train: str, name: str = "tiny", beta: str = "0.1"):
    path = folder / f"{name}.dtg"
    path.write_text(moons_model(name, beta, train=f"lr = 0.02, log_every = 1000, {train}"))
    torch.manual_seed(0)  # the same initial weights for every model compiled here
    return dtg.load(path).compile("cpu")


def heldout_lines(out: Path) -> list[dict]:
    lines = (out / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if "heldout_nats" in r]


def test_the_split_is_disjoint_and_shared_by_models(tmp_path: Path) -> None:
    a = compile_model(tmp_path, "eval_every = 1", "a")
    b = compile_model(tmp_path, "eval_every = 1", "b", beta="0.2")  # another destruction
    data_a, data_b = a.dataset(DATA_SPLIT_SEED), b.dataset(DATA_SPLIT_SEED)
    assert torch.equal(data_a.test, data_b.test)
    assert torch.cdist(data_a.test, data_a.train).min() > 0  # no held-out row is trained on
    opts = {"eval_every": 1, "eval_examples": 30}
    assert HeldOut(a, data_a, opts, None).sha256 == HeldOut(b, data_b, opts, None).sha256
    small, large = training_rows(data_a, 50), training_rows(data_a, 120)
    assert small.n_train == 50 and large.n_train == 120
    kept = set(small.meta["train_index"].tolist())
    assert kept <= set(large.meta["train_index"].tolist())  # nested
    assert torch.equal(small.train, data_a.train[small.meta["train_index"]])
    other = HeldOut(a, small, opts, None).sha256
    assert other != HeldOut(a, data_a, opts, None).sha256  # the subset is part of the record


def test_train_size_beyond_the_data_is_a_clear_error(tmp_path: Path) -> None:
    model = compile_model(tmp_path, "steps = 2, train_size = 100000")
    with pytest.raises(dtg.DtgRuntimeError, match="train_size = 100000 but the data source has"):
        dtg.train(model, out=tmp_path / "r", progress=False)


def test_evaluations_do_not_change_training(tmp_path: Path, one_thread: None) -> None:
    plain = compile_model(tmp_path, "steps = 6")
    dtg.train(plain, out=tmp_path / "plain", progress=False)
    evaluated = compile_model(tmp_path, "steps = 6, eval_every = 2", "again")
    dtg.train(evaluated, out=tmp_path / "eval", progress=False)
    for p, q in zip(plain.parameters(), evaluated.parameters(), strict=True):
        assert torch.equal(p, q)
    lines = heldout_lines(tmp_path / "eval")
    assert [r["step"] for r in lines] == [2, 4, 6]
    assert all(r["heldout_examples"] == 40 for r in lines)  # moons(400): a 10 % test split
    # the figure is the mean per-example NELBO in nats; bits per dimension divide by 2 ln 2
    for r in lines:
        assert r["heldout_bits"] == pytest.approx(
            r["heldout_nats"] / (2 * torch.log(torch.tensor(2.0)).item())
        )


def test_keep_best_keeps_the_minimum_and_resume_continues(tmp_path: Path, one_thread: None) -> None:
    train = "steps = 8, eval_every = 2, checkpoint_every = 4, keep_best = true"
    model = compile_model(tmp_path, train)
    out = tmp_path / "r"
    dtg.train(model, steps=4, out=out, progress=False)
    resumed = compile_model(tmp_path, train)
    dtg.train(resumed, steps=8, out=out, resume=True, progress=False)
    lines = heldout_lines(out)
    assert [r["step"] for r in lines] == [2, 4, 6, 8]
    best_line = min(lines, key=lambda r: r["heldout_nats"])
    best = load_checkpoint(out / "best.pt", torch.device("cpu"))
    assert best["step"] == best_line["step"]
    assert best["heldout"]["best"] == pytest.approx(best_line["heldout_nats"])
    last = load_checkpoint(out / "checkpoint.pt", torch.device("cpu"))
    assert last["heldout"]["best_step"] == best_line["step"]
    assert last["heldout"]["split_sha256"] == best["heldout"]["split_sha256"]


def refused_on_resume(tmp_path: Path, train: str, overrides: dict, message: str) -> None:
    """Train 2 of 4 steps, then resume with ``overrides``: refused with ``message``."""
    model = compile_model(tmp_path, train)
    dtg.train(model, steps=2, out=tmp_path / "r", progress=False)
    again = compile_model(tmp_path, train)
    with pytest.raises(dtg.DtgRuntimeError, match=message):
        dtg.train(again, out=tmp_path / "r", resume=True, progress=False, overrides=overrides)


def test_a_changed_split_is_refused_on_resume(tmp_path: Path, one_thread: None) -> None:
    refused_on_resume(tmp_path, "steps = 4, eval_every = 2", {"eval_examples": 7}, "held-out split")


def test_eval_levels_scores_fewer_levels_and_is_part_of_the_record(
    tmp_path: Path, one_thread: None
) -> None:
    dtg.train(compile_model(tmp_path, "steps = 2, eval_every = 2"), out=tmp_path / "all")
    dtg.train(
        compile_model(tmp_path, "steps = 2, eval_every = 2, eval_levels = 1"), out=tmp_path / "one"
    )
    every, one = heldout_lines(tmp_path / "all")[0], heldout_lines(tmp_path / "one")[0]
    assert (every["heldout_levels"], one["heldout_levels"]) == (4, 1)  # T = 4
    assert one["heldout_nats"] != every["heldout_nats"]  # an estimate of the same figure
    assert abs(one["heldout_nats"] - every["heldout_nats"]) < 0.5 * abs(every["heldout_nats"])
    shown = "steps = 4, eval_every = 2, eval_levels = 2"
    refused_on_resume(tmp_path, shown, {"eval_levels": 3}, "eval_levels")


def test_a_sampler_refuses_held_out_options(tmp_path: Path) -> None:
    source = (Path(__file__).parents[1] / "examples" / "gmm25_tb.dtg").read_text()
    model = dtg.loads(source).compile("cpu")
    with pytest.raises(dtg.DtgRuntimeError, match="eval_every needs data"):
        dtg.train(model, steps=1, out=tmp_path / "r", progress=False, overrides={"eval_every": 1})


def test_keep_best_without_evaluations_is_refused(tmp_path: Path) -> None:
    model = compile_model(tmp_path, "steps = 2, keep_best = true")
    with pytest.raises(dtg.DtgRuntimeError, match="keep_best needs held-out evaluations"):
        dtg.train(model, out=tmp_path / "r", progress=False)


def test_resuming_with_evaluations_equals_an_uninterrupted_run(
    tmp_path: Path, one_thread: None
) -> None:
    train = "steps = 6, eval_every = 2, checkpoint_every = 3, ema = 0.9"
    assert_resume_is_exact(lambda: compile_model(tmp_path, train), tmp_path, steps=6, first=3)
    curve = [(r["step"], r["heldout_nats"]) for r in heldout_lines(tmp_path / "straight")]
    resumed = [(r["step"], r["heldout_nats"]) for r in heldout_lines(tmp_path / "halves")]
    assert [r for r in resumed if r[0] % 2 == 0] == curve  # (the first call also scored its end)
    assert [r[0] for r in resumed] == [2, 3, 4, 6]


def test_evaluations_score_the_ema_weights_and_restore_the_raw_ones(tmp_path: Path) -> None:
    model = compile_model(tmp_path, "steps = 2, eval_every = 1, ema = 0.5")
    data = training_rows(model.dataset(DATA_SPLIT_SEED), 0)
    heldout = HeldOut(model, data, {"eval_every": 1, "eval_examples": 40}, None)
    raw = {n: p.detach().clone() for n, p in model.named_parameters()}
    shadow = {n: torch.zeros_like(p) for n, p in raw.items()}  # an average of all zeros
    zeros = heldout.evaluate(model, shadow)["heldout_nats"]
    assert all(torch.equal(p, raw[n]) for n, p in model.named_parameters())  # restored
    assert model.training
    assert heldout.evaluate(model, None)["heldout_nats"] != zeros  # the raw weights' figure
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    assert heldout.evaluate(model, None)["heldout_nats"] == zeros  # the zero weights' figure


def test_another_train_size_on_resume_is_refused(tmp_path: Path, one_thread: None) -> None:
    message = "train_size = 80 differs from the run's 50"
    refused_on_resume(tmp_path, "steps = 4, train_size = 50", {"train_size": 80}, message)

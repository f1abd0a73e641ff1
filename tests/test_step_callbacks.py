"""Step callbacks: ``train(…, on_step=…)`` and ``add_step_callback`` (how plug-ins reach a run).

They see every step once, in order, with the loss the run records; one that raises stops the run
with the exception, leaving the last checkpoint written before that step; they change nothing
about the run itself. (The multi-process use, a plug-in that kills one rank, is in
``tests/test_distributed.py``.)
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import torch
from test_runtime import GaussModel

from dtg.runtime import load_checkpoint, train
from dtg.runtime.train import StepEvent, add_step_callback, remove_step_callback


class Boom(RuntimeError):
    pass


def test_on_step_sees_every_step_with_its_loss(tmp_path: Path) -> None:
    events: list[StepEvent] = []
    run = train(GaussModel(), steps=12, out=tmp_path, progress=False, on_step=events.append)
    assert [e.step for e in events] == list(range(1, 13))
    assert all(e.total == 12 and e.rank == 0 and e.world == 1 for e in events)
    assert all(e.out == tmp_path and not e.loss.requires_grad for e in events)
    assert [float(e.loss) for e in events] == run.losses


def test_steps_continue_across_a_resume(tmp_path: Path) -> None:
    train(GaussModel(), steps=5, out=tmp_path, progress=False)
    seen: list[int] = []
    train(
        GaussModel(),
        steps=9,
        out=tmp_path,
        progress=False,
        resume=True,
        on_step=[lambda e: seen.append(e.step), lambda e: seen.append(-e.step)],
    )
    assert seen == [6, -6, 7, -7, 8, -8, 9, -9]  # both callbacks, in the order given


def test_callbacks_do_not_change_the_run(tmp_path: Path) -> None:
    plain = GaussModel()
    train(plain, steps=20, out=tmp_path / "a", progress=False)
    watched = GaussModel()
    train(watched, steps=20, out=tmp_path / "b", progress=False, on_step=lambda e: float(e.loss))
    for a, b in zip(plain.parameters(), watched.parameters(), strict=True):
        assert torch.equal(a, b)


def test_a_raising_callback_stops_the_run_after_the_last_checkpoint(tmp_path: Path) -> None:
    handler = signal.getsignal(signal.SIGINT)

    def stop_at_8(event: StepEvent) -> None:
        if event.step == 8:
            raise Boom("stop here")

    with pytest.raises(Boom, match="stop here"):
        train(
            GaussModel(),
            steps=20,
            out=tmp_path,
            progress=False,
            overrides={"checkpoint_every": 5, "log_every": 1},
            on_step=stop_at_8,
        )
    assert load_checkpoint(tmp_path / "checkpoint.pt")["step"] == 5
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 7  # step 8 stopped before its line
    assert signal.getsignal(signal.SIGINT) is handler  # the Ctrl-C handler is put back
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt", "metrics.jsonl"]


def test_registered_callbacks_reach_every_run_until_removed(tmp_path: Path) -> None:
    seen: list[tuple[str, int]] = []
    remove = add_step_callback(lambda e: seen.append(("registered", e.step)))
    try:
        train(
            GaussModel(),
            steps=2,
            out=tmp_path / "a",
            progress=False,
            on_step=lambda e: seen.append(("own", e.step)),
        )
    finally:
        remove()
    train(GaussModel(), steps=2, out=tmp_path / "b", progress=False)
    assert seen == [("registered", 1), ("own", 1), ("registered", 2), ("own", 2)]
    remove()  # twice: no error
    remove_step_callback(print)  # never registered: no error


def test_callbacks_must_be_callable(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="step callback must be callable"):
        add_step_callback(3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="on_step takes callables"):
        train(GaussModel(), steps=2, out=tmp_path, progress=False, on_step=[print, "no"])
    assert not tmp_path.exists() or not any(tmp_path.iterdir())  # refused before any work


def test_a_callback_that_calls_sys_exit_is_a_named_failure(tmp_path: Path) -> None:
    """A plug-in's step callback calling ``sys.exit`` used to end ``dtg train`` silently."""
    import sys

    from dtg.errors import DtgRuntimeError

    def leave(event: StepEvent) -> None:
        if event.step == 3:
            sys.exit(0)

    with pytest.raises(
        DtgRuntimeError, match=r"step callback .*leave called sys.exit\(0\) at step 3"
    ):
        train(GaussModel(), steps=6, out=tmp_path, progress=False, on_step=leave)

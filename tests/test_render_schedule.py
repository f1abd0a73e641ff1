"""The hyperschedule view (``dtg render --view schedule``) and the per-position edge label."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import dtg
import dtg.cli
from dtg.render import destroyed_table, schedule_problem
from dtg.render.scene import channel_label

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def ir_of(name: str):
    return dtg.load(EXAMPLES / f"{name}.dtg").model()


def staircase(length: int) -> np.ndarray:
    """Written out: level t has destroyed positions L - t … L - 1."""
    table = np.zeros((length + 1, length))
    for t in range(length + 1):
        table[t, length - t :] = 1.0
    return table


@pytest.mark.parametrize("name", ["hyper_ar_digits", "autoregressive_digits"])
def test_staircases_are_triangles(name: str) -> None:
    np.testing.assert_array_equal(destroyed_table(ir_of(name)), staircase(64))


def test_blocks_and_flat() -> None:
    blocks = destroyed_table(ir_of("hyper_block_digits"))
    # block b (positions 8b … 8b+7) is destroyed over levels 8(7-b)+1 … 8(8-b), 1/8 per level.
    for b in range(8):
        for t in range(65):
            expected = min(1.0, max(0.0, (t - 8 * (7 - b)) / 8))
            assert blocks[t, 8 * b : 8 * b + 8] == pytest.approx([expected] * 8)
    flat = destroyed_table(ir_of("hyper_flat_digits"))
    shared = destroyed_table(ir_of("mdlm_digits"))
    expected = np.arange(65)[:, None] / 64 * np.ones((1, 64))
    np.testing.assert_allclose(flat, expected, atol=1e-12)
    np.testing.assert_allclose(shared, expected, atol=1e-6)


def test_cli_writes_the_heat_map_and_refuses_what_has_none(tmp_path: Path, capsys) -> None:
    out = tmp_path / "s.png"
    path = str(EXAMPLES / "hyper_block_digits.dtg")
    assert dtg.cli.main(["render", path, "--view", "schedule", "-o", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    moons = str(EXAMPLES / "ddpm_moons.dtg")
    code = dtg.cli.main(["render", moons, "--view", "schedule", "-o", str(tmp_path / "m.png")])
    err = capsys.readouterr().err
    assert code == 2 and "token destruction" in err and "Traceback" not in err
    assert not (tmp_path / "m.png").exists()
    code = dtg.cli.main(["render", path, "--view", "schedule", "-o", str(tmp_path / "s.dot")])
    assert code == 2 and ".png, .svg, .pdf" in capsys.readouterr().err
    assert schedule_problem(ir_of("ddpm_moons")) is not None


def test_a_per_position_keep_is_labelled_with_its_position() -> None:
    assert channel_label(ir_of("hyper_ar_digits").destroy) == ("Maskᵢ", r"\mathsf{Mask}_{i}")
    assert channel_label(ir_of("mdlm_digits").destroy)[0] == "Mask"


def test_a_learned_order_has_no_schedule_view() -> None:
    problem = schedule_problem(ir_of("learned_order_digits"))
    assert problem is not None and "learned" in problem
    uniform = destroyed_table(ir_of("random_order_digits"))  # t of L positions, each alike
    np.testing.assert_allclose(uniform, np.arange(65)[:, None] / 64 * np.ones((1, 64)))

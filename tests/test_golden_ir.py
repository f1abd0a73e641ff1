"""Golden tests of the IR: ``dtg compile --emit ir`` of every example equals ``tests/golden/ir``.

The ``.ir`` files were reviewed by hand (they must read as the withholding graph: levels,
channels with their typed arguments, schedules, tables, the objective). After changing the IR
on purpose, regenerate them with ``python tests/regen_golden.py`` and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import ROOT

EXAMPLES = sorted((ROOT / "examples").glob("*.dtg"))
GOLDEN = ROOT / "tests" / "golden" / "ir"


def test_every_example_has_a_golden_ir() -> None:
    missing = [p.stem for p in EXAMPLES if not (GOLDEN / f"{p.stem}.ir").exists()]
    assert not missing, f"no golden IR for {missing}: run python tests/regen_golden.py"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_emit_ir_matches_golden(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from dtg.cli import main

    cwd = os.getcwd()
    os.chdir(ROOT)  # the CLI prints paths as given: run it as a user would, from the checkout
    try:
        code = main(["compile", path.relative_to(ROOT).as_posix(), "--emit", "ir"])
    finally:
        os.chdir(cwd)
    assert code == 0
    expected = (GOLDEN / f"{path.stem}.ir").read_text(encoding="utf-8")
    assert capsys.readouterr().out == expected

"""Golden tests of the exact error text: each ``tests/bad/NAME.dtg`` has ``NAME.err`` beside it.

The ``.err`` files were reviewed by hand; after changing a message on purpose, regenerate them
with ``python tests/regen_golden.py NAME`` and review the diff.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import BAD, ROOT

import dtg

BAD_FILES = sorted(BAD.glob("*.dtg"))


def test_there_are_enough_golden_cases() -> None:
    assert len(BAD_FILES) >= 15
    missing = [p.name for p in BAD_FILES if not p.with_suffix(".err").exists()]
    assert not missing, f"no .err beside {missing}"


@pytest.mark.parametrize("path", BAD_FILES, ids=lambda p: p.stem)
def test_error_text_matches_golden(path: Path) -> None:
    rel = path.relative_to(ROOT).as_posix()
    with pytest.raises(dtg.DtgError) as info:
        dtg.loads(path.read_bytes(), file=rel)
    expected = path.with_suffix(".err").read_text(encoding="utf-8")
    assert info.value.format() + "\n" == expected
    # Every message is located inside the file.
    span = info.value.span
    assert span is not None and span.file == rel
    lines = path.read_bytes().split(b"\n")
    assert 1 <= span.line <= len(lines)

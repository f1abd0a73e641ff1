"""Shared test helpers: paths, and the golden-error harness."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
BAD = ROOT / "tests" / "bad"


def example_paths() -> list[Path]:
    return sorted(EXAMPLES.glob("*.dtg"))


@pytest.fixture
def root() -> Path:
    return ROOT

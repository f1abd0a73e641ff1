"""Regenerate ``tests/bad/*.err`` from the current error messages.

Run ``python tests/regen_golden.py [NAME…]`` only after changing a message on purpose, then
read every changed ``.err`` file in the diff: the golden files are the reviewed expectation.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import dtg  # noqa: E402


def message_for(path: Path) -> str:
    rel = path.relative_to(ROOT).as_posix()
    try:
        dtg.loads(path.read_bytes(), file=rel)
    except dtg.DtgError as error:
        return error.format() + "\n"
    return "(no error)\n"


if __name__ == "__main__":
    names = set(sys.argv[1:])
    for path in sorted((ROOT / "tests" / "bad").glob("*.dtg")):
        if names and path.stem not in names:
            continue
        path.with_suffix(".err").write_text(message_for(path), encoding="utf-8")
        print("wrote", path.with_suffix(".err").relative_to(ROOT))

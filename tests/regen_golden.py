"""Regenerate the golden files: ``tests/bad/*.err`` (error messages) and ``tests/golden/ir/*.ir``
(``dtg compile --emit ir`` of every example).

Run ``python tests/regen_golden.py [NAME…]`` only after changing a message or the IR on purpose,
then read every changed file in the diff: the golden files are the reviewed expectation.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import dtg  # noqa: E402
from dtg.ir.dump import dump_ir  # noqa: E402

IR_GOLDEN = ROOT / "tests" / "golden" / "ir"


def ir_for(path: Path) -> str:
    """``dtg compile --emit ir`` of every model of an example, as the CLI prints it."""
    program = dtg.load(path.relative_to(ROOT).as_posix())
    return "\n\n".join(dump_ir(ir) for ir in program.models) + "\n"


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
    IR_GOLDEN.mkdir(parents=True, exist_ok=True)
    for path in sorted((ROOT / "examples").glob("*.dtg")):
        if names and path.stem not in names:
            continue
        target = IR_GOLDEN / f"{path.stem}.ir"
        target.write_text(ir_for(path), encoding="utf-8")
        print("wrote", target.relative_to(ROOT))

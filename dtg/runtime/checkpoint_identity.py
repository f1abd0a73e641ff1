"""Which model a checkpoint belongs to, checked before anything in it is used.

A checkpoint records its model's name (``model_name``) and program (``program``, the IR dump
without the train options, and its sha256 ``program_sha256``; see
:mod:`dtg.runtime.checkpoint_schema`). ``dtg sample``, ``dtg eval`` and ``--resume`` use a
checkpoint only with the model it belongs to:

- another model (another name) is refused, naming both (a parent's weights go in with ``--init``);
- the same model whose program changed since (a schedule, T, a net, the objective …) is refused
  saying what changed, unless forced (``--force``: the weights are used with the program as it is
  now, its tables included);
- a checkpoint that records no program (format 1) or a model without one (a stand-in) is compared
  by the file's source text instead.

When the weights do not fit (forced, or format 1), :func:`misfit_error` leads with that cause and
lists a few of the differences.
"""

from __future__ import annotations

import difflib
from typing import Any

from ..errors import DtgRuntimeError
from .checkpoint_schema import program_sha256, program_text, source_sha256

__all__ = ["check_identity", "check_name", "describe_change", "misfit_error"]

#: The lines of an IR dump that say what the user wrote (the rest are derived from them:
#: tables, sympy forms, LaTeX, marginals), by their first word.
_WRITTEN = ("model", "steps", "message", "source:", "net", "schedule", "kernel:", "option",
            "reward", "objective")  # fmt: skip
#: The most differences a message lists.
_SHOWN = 3


def check_name(content: dict[str, Any], ir: Any) -> None:
    """Refuse a checkpoint of another model.

    :param content: from :func:`~dtg.runtime.checkpoint.load_checkpoint`.
    :param ir: the model's IR (its ``name``).
    :raises DtgRuntimeError: naming both models, with ``--init`` as the way to start from it.
    """
    ours, theirs = getattr(ir, "name", None), content.get("model_name")
    if ours is None or theirs is None or ours == theirs:
        return
    path = content.get("path", "")
    raise DtgRuntimeError(
        f"checkpoint {path} is of model '{theirs}', not of model '{ours}'",
        hints=[
            f"use it with model '{theirs}' (--model {theirs}), or start '{ours}' from its "
            f"weights with dtg train … --model {ours} --init {path}"
        ],
    )


def check_identity(
    content: dict[str, Any], ir: Any, program: Any = None, force: bool = False
) -> str | None:
    """Refuse a checkpoint of another model, or of this model's program before it changed.

    :param content: from :func:`~dtg.runtime.checkpoint.load_checkpoint`.
    :param ir: the model's IR.
    :param program: its program (``source``, ``file``), compared by source text when the
        checkpoint or the model has no program identity.
    :param force: return the message of a changed program instead of raising it.
    :returns: ``None`` when the checkpoint is this model's as it is, else (forced) the message.
    :raises DtgRuntimeError: for another model (even when forced), or a changed program.
    """
    check_name(content, ir)
    saved, now = content.get("program_sha256"), program_sha256(ir)
    path = content.get("path", "")
    if saved is not None and now is not None:
        if saved == now:
            return None
        what = describe_change(content.get("program"), program_text(ir))
        message = (
            f"checkpoint {path} is of an earlier version of model '{ir.name}': its "
            f"program differs: {what}"
        )
    else:
        source = getattr(program, "source", None)
        if program is None or content["source_sha256"] == source_sha256(source):
            return None
        file = getattr(program, "file", "the program")
        message = (
            f"{file} changed since checkpoint {path} was written (source sha256 "
            f"{content['source_sha256'][:12]}…, now {source_sha256(source)[:12]}…)"
        )
    if force:
        return message
    raise DtgRuntimeError(
        message,
        hints=[
            "restore the model as it was, or train it afresh; --force uses these weights with "
            "the program as it is now"
        ],
    )


def _written(dump: str) -> list[str]:
    """The lines of ``dump`` the user wrote, a kernel's line named by its channel."""
    lines, section = [], ""
    for raw in dump.splitlines():
        line = raw.strip()
        if raw.startswith("  ") and not raw.startswith("   "):
            section = line.split(":")[0].split(" ")[0]
        if line.split(" ")[0] not in _WRITTEN:
            continue
        lines.append(f"{section} {line}" if raw.startswith("    ") else line)
    return lines


def _quoted(line: str) -> str:
    return f"'{line if len(line) <= 90 else line[:87] + '…'}'"


def describe_change(before: str | None, after: str | None) -> str:
    """What changed between two programs (:func:`program_text`), in at most a few items.

    :param before: the checkpoint's program, or ``None`` when it did not record it.
    :param after: the model's program now.
    :returns: e.g. ``'steps T = 10' is now 'steps T = 20'``.
    """
    if before is None or after is None:
        return "it was written before dtg recorded programs, and its sha256 differs"
    old, new = _written(before), _written(after)
    if old == new:  # only derived lines differ (a table of another dtg version)
        old, new = before.splitlines(), after.splitlines()
    items: list[str] = []
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        gone, added = old[i1:i2], new[j1:j2]
        for a, b in zip(gone, added, strict=False):
            items.append(f"{_quoted(a)} is now {_quoted(b)}")
        items += [f"{_quoted(a)} is gone" for a in gone[len(added) :]]
        items += [f"{_quoted(b)} is new" for b in added[len(gone) :]]
    if not items:
        return "its sha256 differs"
    more = f" (and {len(items) - _SHOWN} more)" if len(items) > _SHOWN else ""
    return "; ".join(items[:_SHOWN]) + more


def misfit_error(content: dict[str, Any], ir: Any, differences: list[str]) -> DtgRuntimeError:
    """The refusal of weights that do not fit the model, leading with why.

    :param differences: from :func:`~dtg.runtime.checkpoint_fit.weight_differences`.
    """
    ours = getattr(ir, "name", None)
    path = content.get("path", "")
    saved, now = content.get("program_sha256"), program_sha256(ir)
    if content.get("model_name") not in (None, ours):
        cause = f": it is a checkpoint of model '{content.get('model_name')}'"
    elif saved is not None and now is not None and saved != now:
        cause = (
            f": its program differs: {describe_change(content.get('program'), program_text(ir))}"
        )
    else:
        count = len(differences)
        cause = f" ({count} difference{'s' if count != 1 else ''} in its weights)"
    shown = differences[:_SHOWN]
    if len(differences) > _SHOWN:
        shown.append(f"… and {len(differences) - _SHOWN} more")
    if cause.startswith(" ("):
        shown.append("was the net or the model changed? use --model, or retrain")
    return DtgRuntimeError(f"checkpoint {path} does not fit model '{ours}'{cause}", hints=shown)

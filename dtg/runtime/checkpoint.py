"""Training checkpoints: atomic writes, safe loads, and exact resumption.

A checkpoint is one ``torch.save`` file holding plain data only (tensors, dicts, lists, numbers,
strings), so it loads with ``torch.load(..., weights_only=True)``: a file that would run code is
refused, never executed. It holds everything a resumed run needs to continue *bitwise* as if it
had never stopped (on CPU): the weights, the optimizer and EMA state, the step, the random states
of torch (CPU and CUDA), numpy and Python, and the data stream's generator; plus the program's
source text and its sha256, the model's name, its program (the IR dump) and that program's sha256
(``program_sha256``, its identity), and the train options. It does not hold the tables the
program compiles to (schedules, marginals, loss weights): restoring keeps the model's own.

Format version 2 (``docs/checkpoints.md``): :func:`load_checkpoint` checks every field once, at
load (:mod:`dtg.runtime.checkpoint_schema`), and the restore functions check the checkpoint
against the compiled model before copying anything: that it is this model's, as its program is
now (:mod:`dtg.runtime.checkpoint_identity`), and that its weights fit
(:mod:`dtg.runtime.checkpoint_fit`); every refusal is a :class:`~dtg.errors.DtgRuntimeError`
naming the field or both models. Version-1 files are read.
"""

from __future__ import annotations

import os
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .._version import __version__
from ..atomic import atomic_writer, kind_of
from ..errors import DtgRuntimeError
from .checkpoint_fit import (
    check_counters,
    check_ema,
    check_optimizer,
    restored_state,
    saved_state,
    weight_differences,
)
from .checkpoint_identity import check_identity, check_name, misfit_error
from .checkpoint_schema import (
    FORMAT,
    FORMAT_VERSION,
    check_content,
    program_sha256,
    program_text,
    source_sha256,
)
from .checkpoint_values import SchemaError, describe

__all__ = [
    "CHECKPOINT",
    "checkpoint_file",
    "effective_state",
    "FORMAT",
    "FORMAT_VERSION",
    "source_sha256",
    "capture_rng",
    "restore_rng",
    "save_checkpoint",
    "load_checkpoint",
    "restore_model",
    "check_source",
    "seed_everything",
    "training_state",
    "restore_training",
]

#: The checkpoint's file name in a run folder (beside ``metrics.jsonl``).
CHECKPOINT = "checkpoint.pt"
_HINT = "it was not written by dtg train, or was edited or damaged since: use another checkpoint"


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, numpy's global generator and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def capture_rng() -> dict[str, Any]:
    """The global random states as plain data (tensors and lists; loadable with weights_only).

    :returns: ``torch`` (``ByteTensor``), ``cuda`` (list of ``ByteTensor``, one per device),
        ``numpy`` (dict) and ``python`` (list) entries.
    """
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "python": [int(version), [int(v) for v in internal], gauss_next],
    }


def restore_rng(state: dict[str, Any]) -> None:
    """Set the global random states from :func:`capture_rng` output (moved back to the CPU).

    :param state: checked by :mod:`dtg.runtime.checkpoint_schema` (``load_checkpoint``).
    :raises SchemaError: for CUDA states this machine's CUDA does not take.
    """
    torch.set_rng_state(state["torch"].cpu())
    if state.get("cuda") and torch.cuda.is_available():
        cuda = [s.cpu() for s in state["cuda"]]
        if len(cuda) == torch.cuda.device_count():
            try:
                torch.cuda.set_rng_state_all(cuda)
            except RuntimeError:  # a state of another size than this CUDA's generators
                raise SchemaError("rng.cuda", "is not a state of this machine's CUDA") from None
    np_state = state["numpy"]
    keys = np_state["keys"].cpu().numpy().astype(np.uint32)
    np.random.set_state(
        (np_state["kind"], keys, np_state["pos"], np_state["has_gauss"], np_state["cached"])
    )
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))


def save_checkpoint(path: str | Path, content: dict[str, Any]) -> Path:
    """Write ``content`` to ``path`` atomically: a reader sees the old file or the new one whole
    (:mod:`dtg.atomic`: a temporary file in the same folder, ``fsync``, ``os.replace``; on any
    failure the temporary file is removed and the old checkpoint stays).

    :param path: the checkpoint file (its folder is created if needed).
    :param content: plain data (see the module docstring); ``format`` keys are added.
    :returns: the path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    content = {"format": FORMAT, "format_version": FORMAT_VERSION, **content}
    with atomic_writer(path, "wb") as file:
        torch.save(content, file)
    return path


def checkpoint_file(path: str | Path) -> Path:
    """Refuse a checkpoint path that exists but is not a file (``--checkpoint DIR``).

    :returns: ``path`` (which may not exist: the caller says so).
    :raises DtgRuntimeError: for a folder (suggesting its ``checkpoint.pt``), a pipe, a device …
    """
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return path
    kind = kind_of(mode)
    if kind == "a folder":
        inside = path / CHECKPOINT
        hint = f"did you mean {inside}?" if inside.is_file() else f"it holds no {CHECKPOINT}"
        raise DtgRuntimeError(f"checkpoint {path} is a folder, not a checkpoint file", hints=[hint])
    if kind is not None:
        raise DtgRuntimeError(f"checkpoint {path} is {kind}, not a checkpoint file")
    return path


def _unreadable(path: Path, error: Exception) -> DtgRuntimeError:
    """The refusal of a file ``torch.load(weights_only=True)`` would not read, in dtg's words
    (never torch's advice to load it with ``weights_only=False``)."""
    said = str(error).strip()
    if type(error).__name__ == "UnpicklingError" or "WeightsUnpickler" in said:
        names = sorted(set(re.findall(r"GLOBAL ([\w.]+)", said)))
        operand = re.search(r"Unsupported operand \d+", said)
        if names or not operand:
            what = f" ({', '.join(names)})" if names else ""
            hint = f"it holds Python objects{what}, not only plain data: dtg reads plain data only"
        else:  # e.g. an integer of more than 64 bits
            hint = f"it holds a value the safe reader does not take ({operand.group(0)})"
    else:
        first = said.splitlines()[0] if said else type(error).__name__
        quoted = "weights_only" not in said.lower().replace(" ", "_")
        hint = f"torch.load said: {first[:300]}" if quoted else type(error).__name__
    return DtgRuntimeError(
        f"cannot read checkpoint {path}: the file is corrupted, truncated or not a dtg "
        "checkpoint (nothing in it was run)",
        hints=[hint],
    )


def load_checkpoint(path: str | Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Read a checkpoint safely (``weights_only=True``: no code in the file is ever run) and
    check it against the schema (:mod:`dtg.runtime.checkpoint_schema`): every field's type,
    shape, range and finiteness, and the fields' agreement with each other.

    :param path: the checkpoint file.
    :param device: where its tensors are placed (``map_location``).
    :returns: the checkpoint's content (``program_sha256`` is ``None`` in a version-1 file).
    :raises DtgRuntimeError: for a missing, unreadable, truncated, corrupted or foreign file,
        a folder, a newer format, or a field that breaks the schema (the message names it).
    """
    path = checkpoint_file(path)
    if not path.is_file():
        raise DtgRuntimeError(
            f"no checkpoint at {path}",
            hints=["train first (dtg train FILE --out DIR) or pass the right --checkpoint"],
        )
    try:
        content = torch.load(path, map_location=device, weights_only=True)
    except Exception as error:  # truncated zip, random bytes, a pickle that wants to run code …
        raise _unreadable(path, error) from None
    if not isinstance(content, dict) or content.get("format") != FORMAT:
        raise DtgRuntimeError(f"{path} is not a dtg checkpoint")
    version = content.get("format_version")
    if isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION:
        written = content.get("dtg_version")
        by = f"dtg {written}" if isinstance(written, str) else "a newer dtg"
        raise DtgRuntimeError(
            f"checkpoint {path}: field 'format_version' is {describe(version)}, newer than this "
            f"dtg reads ({FORMAT_VERSION})",
            hints=[f"it was written by {by}; upgrade dtg"],
        )
    try:
        check_content(content)
    except SchemaError as error:
        raise DtgRuntimeError(f"checkpoint {path}: {error}", hints=[_HINT]) from None
    content["path"] = str(path)
    return content


def _refuse(content: dict[str, Any], error: SchemaError) -> DtgRuntimeError:
    return DtgRuntimeError(f"checkpoint {content.get('path', '')}: {error}", hints=[_HINT])


def _check_weights(model: nn.Module, content: dict[str, Any]) -> None:
    """The checkpoint's weights, training counters and EMA weights fit ``model`` (nothing is
    copied; the program's tables are not compared: they are never restored)."""
    differences = weight_differences(model, content["model"])
    if differences:
        raise misfit_error(content, getattr(model, "ir", None), differences)
    try:
        check_counters(model, content["model"])
        if content.get("ema"):
            check_ema(model, content["ema"], every=False)
    except SchemaError as error:
        raise _refuse(content, error) from None


def restore_model(
    model: nn.Module, content: dict[str, Any], use_ema: bool = False, force: bool = False
) -> str | None:
    """Load a checkpoint's weights into ``model``, in place, keeping the model's tables.

    :param model: the compiled model: the checkpoint must be of this model (its name) and its
        program as it is now (:func:`~dtg.runtime.checkpoint_identity.check_identity`), and its
        weights' names, shapes and dtypes must match.
    :param content: from :func:`load_checkpoint`.
    :param use_ema: load the EMA weights instead of the raw ones, when the checkpoint has them.
    :param force: use the weights even though the model's program changed since the checkpoint.
    :returns: ``None``, or (forced) the message saying that the program changed.
    :raises DtgRuntimeError: for a checkpoint of another model, of a changed program (unless
        forced), or whose weights or EMA weights do not fit (leading with the cause, a few
        differences listed).
    """
    ir = getattr(model, "ir", None)
    changed = check_identity(content, ir, getattr(model, "program", None), force)
    _check_weights(model, content)
    model.load_state_dict(restored_state(model, content["model"]))
    if use_ema and content.get("ema"):
        params = dict(model.named_parameters())
        with torch.no_grad():
            for name, value in content["ema"].items():
                params[name].copy_(value)
    return changed


def effective_state(content: dict[str, Any], use_ema: bool = True) -> dict[str, torch.Tensor]:
    """The weights a checkpoint stands for: its ``model`` state with the EMA weights laid over
    it when it has them and ``use_ema`` (what ``dtg sample`` and ``dtg eval`` use).

    :param content: from :func:`load_checkpoint`.
    :returns: a state dict (new dict; tensors shared with ``content``).
    """
    state = dict(content["model"])
    if use_ema and content.get("ema"):
        state.update({k: v for k, v in content["ema"].items() if k in state})
    return state


def check_source(content: dict[str, Any], program: Any, force: bool = False) -> str | None:
    """Whether the checkpoint is of the model as it is now (what ``--resume`` checks first).

    :param program: the compiled model, or its program: then the checkpoint's model is looked up
        in it by name (:func:`restore_training` refuses a checkpoint of another model).
    :param force: when true, a change is reported (returned) instead of raised.
    :returns: ``None`` when the model's program is unchanged (a comment, the layout, the train
        options or another model of the file may have changed), else the message.
    :raises DtgRuntimeError: for another model, or a changed program when ``force`` is false.
    """
    if hasattr(program, "ir"):  # the compiled model
        return check_identity(content, program.ir, getattr(program, "program", None), force)
    models = getattr(program, "models", None)
    if models is None:  # a stand-in without models: its source text is compared
        return check_identity(content, None, program, force)
    ir = next((m for m in models if m.name == content.get("model_name")), None)
    return None if ir is None else check_identity(content, ir, program, force)


def training_state(
    model: Any,
    optimizer: torch.optim.Optimizer,
    ema: dict[str, torch.Tensor] | None,
    step: int,
    data_generator: torch.Generator,
    options: dict[str, Any],
    elapsed: float,
) -> dict[str, Any]:
    """Everything a resumed run needs, as plain data (see the module docstring and
    ``docs/checkpoints.md``).

    :param model: the compiled model (``ir.name``, ``program.source``/``file`` are recorded, and
        its program, :func:`~dtg.runtime.checkpoint_schema.program_text`, with its sha256); its
        tables are not (:func:`~dtg.runtime.checkpoint_fit.saved_state`).
    :param ema: the EMA weights by parameter name, or ``None``.
    :param elapsed: seconds of training so far (continued by a resumed run's ``time``).
    """
    source = getattr(model.program, "source", None)
    return {
        "dtg_version": __version__,
        "model_name": model.ir.name,
        "program_sha256": program_sha256(model.ir),
        "program": program_text(model.ir),
        "step": int(step),
        "model": saved_state(model),
        "optimizer": optimizer.state_dict(),
        "ema": dict(ema) if ema is not None else None,
        "rng": capture_rng(),
        "data_generator": data_generator.get_state(),
        "train_options": dict(options),
        "source": source,
        "source_sha256": source_sha256(source),
        "file": str(getattr(model.program, "file", "")),
        "elapsed": float(elapsed),
    }


def restore_training(
    content: dict[str, Any],
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    data_generator: torch.Generator,
) -> tuple[int, float]:
    """Put a run back where :func:`training_state` left it (weights, optimizer, random states),
    once everything is checked against ``model`` and ``optimizer`` (a refusal changes nothing).
    The program's tables stay the model's. Its program was compared by :func:`check_source`.

    :returns: ``(step, elapsed seconds)``.
    :raises DtgRuntimeError: for a checkpoint of another model, or when the weights, the EMA
        weights or the optimizer's groups and moments do not fit (the message names the field).
    """
    check_name(content, getattr(model, "ir", None))
    _check_weights(model, content)
    state = content.get("optimizer")
    try:
        if content.get("ema") is not None:
            check_ema(model, content["ema"], every=True)
        if state is not None:
            check_optimizer(optimizer, state)
    except SchemaError as error:
        raise _refuse(content, error) from None
    model.load_state_dict(restored_state(model, content["model"]))
    if state is not None:
        for entry in state["state"].values():  # Adam keeps its step counts on the CPU
            if isinstance(entry.get("step"), torch.Tensor):
                entry["step"] = entry["step"].cpu()
        optimizer.load_state_dict(state)
    if content.get("rng") is not None:
        try:
            restore_rng(content["rng"])
        except SchemaError as error:
            raise _refuse(content, error) from None
    if content.get("data_generator") is not None:
        data_generator.set_state(content["data_generator"].cpu())
    return int(content["step"]), float(content.get("elapsed") or 0.0)

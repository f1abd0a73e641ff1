"""Training checkpoints: atomic writes, safe loads, and exact resumption.

A checkpoint is one ``torch.save`` file holding plain data only (tensors, dicts, lists, numbers,
strings), so it loads with ``torch.load(..., weights_only=True)``: a file that would run code is
refused, never executed. It holds everything a resumed run needs to continue *bitwise* as if it
had never stopped (on CPU): the weights, the optimizer and EMA state, the step, the random states
of torch (CPU and CUDA), numpy and Python, and the data stream's generator; plus the program's
source text and its sha256 (to notice an edited file), the model's name and the train options.
"""

from __future__ import annotations

import hashlib
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .._version import __version__
from ..atomic import atomic_writer
from ..errors import DtgRuntimeError

__all__ = [
    "CHECKPOINT",
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
FORMAT = "dtg-checkpoint"
FORMAT_VERSION = 1
_REQUIRED = ("format_version", "model", "step", "model_name", "source_sha256")


def source_sha256(text: str | None) -> str:
    """:returns: the hex sha256 of a program's source text (of ``""`` when there is none)."""
    return hashlib.sha256((text or "").encode("utf-8")).hexdigest()


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
    """Set the global random states from :func:`capture_rng` output (moved back to the CPU)."""
    torch.set_rng_state(state["torch"].cpu())
    if state.get("cuda") and torch.cuda.is_available():
        cuda = [s.cpu() for s in state["cuda"]]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
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


def load_checkpoint(path: str | Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Read a checkpoint safely (``weights_only=True``: no code in the file is ever run).

    :param path: the checkpoint file.
    :param device: where its tensors are placed (``map_location``).
    :returns: the checkpoint's content.
    :raises DtgRuntimeError: for a missing, unreadable, truncated, corrupted or foreign file.
    """
    path = Path(path)
    if not path.is_file():
        raise DtgRuntimeError(
            f"no checkpoint at {path}",
            hints=["train first (dtg train FILE --out DIR) or pass the right --checkpoint"],
        )
    try:
        content = torch.load(path, map_location=device, weights_only=True)
    except Exception as error:  # truncated zip, random bytes, a pickle that wants to run code …
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DtgRuntimeError(
            f"cannot read checkpoint {path}: the file is corrupted, truncated or not a dtg "
            "checkpoint (nothing in it was run)",
            hints=[f"torch.load said: {first[:300]}"],
        ) from None
    if not isinstance(content, dict) or content.get("format") != FORMAT:
        raise DtgRuntimeError(f"{path} is not a dtg checkpoint")
    missing = [key for key in _REQUIRED if key not in content]
    if missing:
        raise DtgRuntimeError(f"checkpoint {path} is incomplete (missing {', '.join(missing)})")
    if content["format_version"] > FORMAT_VERSION:
        raise DtgRuntimeError(
            f"checkpoint {path} has format version {content['format_version']}, newer than this "
            f"dtg reads ({FORMAT_VERSION})",
            hints=[f"it was written by dtg {content.get('dtg_version', '?')}; upgrade dtg"],
        )
    content["path"] = str(path)
    return content


def _state_differences(model: nn.Module, state: dict[str, torch.Tensor]) -> list[str]:
    own = model.state_dict()
    lines = [
        f"missing from the checkpoint: {k} {tuple(own[k].shape)}" for k in own if k not in state
    ]
    lines += [f"not in this model: {k} {tuple(state[k].shape)}" for k in state if k not in own]
    lines += [
        f"shape of {k}: checkpoint {tuple(state[k].shape)}, model {tuple(own[k].shape)}"
        for k in own
        if k in state and tuple(own[k].shape) != tuple(state[k].shape)
    ]
    return lines


def restore_model(model: nn.Module, content: dict[str, Any], use_ema: bool = False) -> None:
    """Load a checkpoint's weights into ``model``, in place.

    :param model: the compiled model (its ``state_dict`` keys and shapes must match).
    :param content: from :func:`load_checkpoint`.
    :param use_ema: load the EMA weights instead of the raw ones, when the checkpoint has them.
    :raises DtgRuntimeError: when the checkpoint belongs to a different model, listing the
        differences (at most 12).
    """
    state = content["model"]
    differences = _state_differences(model, state)
    if differences:
        name, ours = content.get("model_name"), getattr(getattr(model, "ir", None), "name", None)
        hints = [f"checkpoint of model '{name}', this is '{ours}'"] if name != ours else []
        shown = differences[:12] + (
            [f"… and {len(differences) - 12} more"] if len(differences) > 12 else []
        )
        raise DtgRuntimeError(
            f"checkpoint {content.get('path', '')} does not fit model '{ours}' "
            f"({len(differences)} difference{'s' if len(differences) != 1 else ''})",
            hints=shown + hints + ["was the net or the model changed? use --model, or retrain"],
        )
    model.load_state_dict(state)
    if use_ema and content.get("ema"):
        params = dict(model.named_parameters())
        with torch.no_grad():
            for name, value in content["ema"].items():
                if name in params:
                    params[name].copy_(value)


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
    """Compare the checkpoint's program source with ``program.source``.

    :param force: when true, a change is reported (returned) instead of raised.
    :returns: ``None`` when the source is unchanged, else the message.
    :raises DtgRuntimeError: when the source changed and ``force`` is false.
    """
    if content["source_sha256"] == source_sha256(getattr(program, "source", None)):
        return None
    file = getattr(program, "file", "the program")
    message = (
        f"{file} changed since checkpoint {content.get('path', '')} was written "
        f"(source sha256 {content['source_sha256'][:12]}…, now "
        f"{source_sha256(getattr(program, 'source', None))[:12]}…)"
    )
    if force:
        return message
    raise DtgRuntimeError(
        message,
        hints=["restore the file, train from scratch, or resume anyway with --force"],
    )


def training_state(
    model: Any,
    optimizer: torch.optim.Optimizer,
    ema: dict[str, torch.Tensor] | None,
    step: int,
    data_generator: torch.Generator,
    options: dict[str, Any],
    elapsed: float,
) -> dict[str, Any]:
    """Everything a resumed run needs, as plain data (see the module docstring).

    :param model: the compiled model (``ir.name``, ``program.source``/``file`` are recorded).
    :param ema: the EMA weights by parameter name, or ``None``.
    :param elapsed: seconds of training so far (continued by a resumed run's ``time``).
    """
    source = getattr(model.program, "source", None)
    return {
        "dtg_version": __version__,
        "model_name": model.ir.name,
        "step": int(step),
        "model": model.state_dict(),
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
    """Put a run back where :func:`training_state` left it (weights, optimizer, random states).

    :returns: ``(step, elapsed seconds)``.
    :raises DtgRuntimeError: when the weights or the optimizer's groups do not fit.
    """
    restore_model(model, content)
    state = content.get("optimizer")
    if state is not None:
        for entry in state["state"].values():  # Adam keeps its step counts on the CPU
            if isinstance(entry.get("step"), torch.Tensor):
                entry["step"] = entry["step"].cpu()
        try:
            optimizer.load_state_dict(state)
        except (ValueError, KeyError) as error:
            raise DtgRuntimeError(
                f"cannot resume the optimizer from {content.get('path', '')}: {error}"
            ) from None
    if content.get("rng") is not None:
        restore_rng(content["rng"])
    if content.get("data_generator") is not None:
        data_generator.set_state(content["data_generator"].cpu())
    return int(content["step"]), float(content.get("elapsed", 0.0))

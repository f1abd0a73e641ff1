"""Weights out: a checkpoint's weights as a ``.safetensors`` file (``dtg export``), and back.

The file holds the weights a checkpoint stands for (its EMA weights when it has them, as
``dtg sample`` uses) as plain tensors — safetensors stores no code, so loading one can run
nothing — and, in its metadata, the model's name, the program's sha256 and text (the IR print a
checkpoint's identity is made of), the ``.dtg`` source, the step and dtg's version. Loading it
into a compiled model checks the name and the program's sha256 (a file exported from another
model or from an earlier version of this program is refused, naming the difference) and every
weight's name, shape and dtype, exactly as a checkpoint is checked. ``dtg sample``, ``dtg eval``
and ``dtg score`` take a ``.safetensors`` file wherever they take ``--checkpoint``.

safetensors is an optional dependency (``pip install safetensors``, in the ``export`` and ``dev``
extras), imported when a file is written or read.

References: Hugging Face safetensors (https://github.com/huggingface/safetensors).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .. import __version__
from ..atomic import write_atomic
from ..errors import DtgRuntimeError
from .checkpoint import effective_state, load_checkpoint
from .checkpoint_schema import source_sha256

__all__ = ["SUFFIX", "export_checkpoint", "load_exported"]

SUFFIX = ".safetensors"
_KEYS = ("dtg_version", "model_name", "program_sha256", "program", "source", "step", "train_size")


def _library() -> Any:
    try:
        import safetensors.torch  # optional: only dtg export and .safetensors files need it
    except ImportError:
        raise DtgRuntimeError(
            "reading or writing .safetensors files needs the safetensors package",
            hints=["pip install safetensors (or the extra: pip install dtg[export])"],
        ) from None
    return safetensors.torch


def export_checkpoint(checkpoint: str | Path, out: str | Path) -> dict[str, str]:
    """Write the weights of ``checkpoint`` to ``out`` (atomically).

    :param checkpoint: a ``checkpoint.pt`` (checked as every checkpoint is).
    :param out: the ``.safetensors`` file to write.
    :returns: the metadata written.
    :raises DtgRuntimeError: for a bad checkpoint, or a checkpoint without a program identity.
    """
    library = _library()
    content = load_checkpoint(checkpoint, torch.device("cpu"))
    if content.get("program_sha256") is None:
        raise DtgRuntimeError(
            f"checkpoint {checkpoint} predates program identities (format version 1)",
            hints=["resume it once with a current dtg (dtg train --resume) and export again"],
        )
    weights = {
        k: v.detach().cpu().contiguous().clone() for k, v in effective_state(content).items()
    }
    metadata = {
        "dtg_version": __version__,
        "model_name": content["model_name"],
        "program_sha256": content["program_sha256"],
        "program": content.get("program") or "",
        "source": content.get("source") or "",
        "step": str(int(content["step"])),
        "train_size": str(int((content.get("train_options") or {}).get("train_size", 0))),
    }
    write_atomic(Path(out), library.save(weights, metadata=metadata))
    return metadata


def load_exported(path: str | Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Read an exported file as the fields :func:`~dtg.runtime.checkpoint.restore_model` checks.

    :param path: the ``.safetensors`` file. :param device: where its tensors go.

    :returns: a checkpoint-like dict (``model`` the weights, ``ema`` ``None``, the identity).
    :raises DtgRuntimeError: for a file that is not a dtg export (naming what is missing).
    """
    _library()  # the clear error when safetensors is missing
    from safetensors import safe_open  # optional: only .safetensors files need it

    try:
        with safe_open(str(path), framework="pt", device=str(device)) as handle:
            metadata = handle.metadata() or {}
            weights = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
    except Exception as error:  # the library's own errors differ by version; all say "corrupt"
        raise DtgRuntimeError(f"{path} is not a readable .safetensors file: {error}") from None
    for name, tensor in weights.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise DtgRuntimeError(f"{path}: the weight {name!r} holds NaN or infinite values")
    missing = [k for k in _KEYS if k not in metadata]
    if missing:
        raise DtgRuntimeError(
            f"{path} was not written by dtg export: its metadata lacks {', '.join(missing)}"
        )
    if not (metadata["step"].isdigit() and metadata["train_size"].isdigit()):
        raise DtgRuntimeError(f"{path}: its metadata's step and train_size are not counts")
    return {
        "model": weights,
        "ema": None,
        "model_name": metadata["model_name"],
        "program_sha256": metadata["program_sha256"],
        "program": metadata["program"] or None,
        "source": metadata["source"] or None,
        "source_sha256": source_sha256(metadata["source"] or None),
        "step": int(metadata["step"]),
        "path": str(path),
        "train_options": {"train_size": int(metadata["train_size"])},
    }

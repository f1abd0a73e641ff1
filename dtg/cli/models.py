"""The model that ``dtg train``, ``dtg sample`` and ``dtg eval`` work on.

Their shared arguments (``FILE``, ``--model``, ``--device``; for sample and eval also
``--checkpoint``, ``-n`` and ``--seed``), and loading, compiling and restoring the model they
name. Compiling imports torch, so :mod:`dtg.runtime` is imported only when a command runs.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from .. import program as program_module
from ..ir import ModelIR
from ..program import Program
from .errors import usage
from .files import pick_model

__all__ = [
    "add_model_arguments",
    "add_checkpoint_arguments",
    "load_program",
    "compile_model",
    "restore",
]


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``FILE``, ``--model`` and ``--device``.

    :param parser: the subcommand's parser.
    """
    parser.add_argument("file", metavar="FILE", help="the .dtg file")
    parser.add_argument("--model", help="the model to use (default: the file's last)")
    parser.add_argument("--device", default="auto", help="auto (default), cpu or cuda")


def add_checkpoint_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--checkpoint``, ``-n``, ``--seed`` and ``--force`` (the commands that use a trained
    model).

    :param parser: the subcommand's parser.
    """
    parser.add_argument("--checkpoint", required=True, metavar="CKPT", help="checkpoint.pt")
    parser.add_argument("-n", type=int, default=2000, metavar="N", help="samples (2000)")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (0)")
    parser.add_argument(
        "--force",
        action="store_true",
        help="use the checkpoint although the model's program changed since it was trained",
    )


def load_program(args: argparse.Namespace) -> tuple[Program, ModelIR]:
    """The program of ``FILE`` and the model named by ``--model`` (default: the file's last).

    :param args: ``file``, ``model``.
    :returns: the checked program and the model's IR.
    :raises UsageError: for a missing file or an unknown model.
    """
    file = Path(args.file)
    if not file.exists():
        raise usage(f"no such file: {args.file}")
    if file.is_dir():
        raise usage(f"{args.file} is a directory, not a .dtg file")
    # Looked up on the module at each call, so that a caller may wrap dtg.program.load (a cache).
    program = program_module.load(file)
    return program, pick_model(program, args.model, args.file)


def compile_model(program: Program, ir: ModelIR, device_name: str) -> Any:
    """Compile ``ir`` on the device ``--device`` names (under torchrun: this process's GPU).

    :param program: the checked program.
    :param ir: the model to compile.
    :param device_name: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
    :returns: the compiled model.
    :raises DtgRuntimeError: for ``cuda`` on a machine without CUDA (exit 1).
    """
    from ..runtime.device import resolve_device  # heavy: imports torch

    device = resolve_device(device_name)
    if device.type == "cuda" and "LOCAL_RANK" in os.environ:  # one GPU per torchrun process
        device = type(device)("cuda", int(os.environ["LOCAL_RANK"]))
    return program.compile(device=str(device), model=ir.name)


def restore(args: argparse.Namespace) -> tuple[Program, Any, dict[str, Any]]:
    """Load FILE, compile it and load ``--checkpoint`` into it (EMA weights when there are; the
    tables stay the program's). With ``--force``, a checkpoint of the model before its program
    changed is used, with a note.

    :param args: the model and checkpoint arguments.
    :returns: the program, the model in eval mode and the checkpoint's contents.
    :raises UsageError: for ``-n`` below 1 or a missing checkpoint file.
    :raises DtgRuntimeError: for a corrupted checkpoint, one of another model, or one of this
        model before its program changed (without ``--force``).
    """
    from ..runtime.checkpoint import load_checkpoint, restore_model  # heavy: imports torch

    if args.n < 1:
        raise usage(f"-n must be at least 1, got {args.n}")
    if not Path(args.checkpoint).exists():
        raise usage(f"no such checkpoint: {args.checkpoint}")
    program, ir = load_program(args)
    model = compile_model(program, ir, args.device)
    if str(args.checkpoint).endswith(".safetensors"):  # weights from dtg export
        from ..runtime.export import load_exported  # optional: safetensors

        content = load_exported(args.checkpoint, model.device)
    else:
        content = load_checkpoint(args.checkpoint, model.device)
    changed = restore_model(model, content, use_ema=True, force=getattr(args, "force", False))
    if changed:
        note = f"{changed} (--force: its weights are used with the program as it is now)"
        print(f"dtg: note: {note}", file=sys.stderr)
    model.eval()
    return program, model, content

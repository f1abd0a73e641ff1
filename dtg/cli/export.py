"""``dtg export CKPT [-o OUT.safetensors]``: a checkpoint's weights as safetensors.

The weights (EMA when kept) with the model's name, program sha256, program text and source in the
metadata (:mod:`dtg.runtime.export`); ``dtg sample``, ``eval`` and ``score`` load the file with
``--checkpoint OUT.safetensors``, refusing one of another program.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .errors import usage

__all__ = ["register", "cmd_export"]


def cmd_export(args: argparse.Namespace) -> int:
    """Write the export; print where.

    :returns: 0.
    :raises UsageError: for a missing checkpoint, an output folder that does not exist, or an
        output whose name does not end in ``.safetensors``.
    """
    from ..runtime.checkpoint import checkpoint_file  # heavy: imports torch
    from ..runtime.export import SUFFIX, export_checkpoint  # heavy: imports torch

    source = checkpoint_file(args.checkpoint)
    out = Path(args.output) if args.output else source.with_suffix(SUFFIX)
    if out.suffix != SUFFIX:
        raise usage(f"-o {out}: the export is a {SUFFIX} file (name it MODEL{SUFFIX})")
    if not out.resolve().parent.is_dir():
        raise usage(f"the folder of {out} does not exist")
    metadata = export_checkpoint(source, out)
    print(f"wrote {out} (model {metadata['model_name']}, step {metadata['step']})")
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``export`` to the ``dtg`` subcommands."""
    parser = commands.add_parser("export", help="write a checkpoint's weights as safetensors")
    parser.add_argument("checkpoint", metavar="CKPT", help="checkpoint.pt")
    parser.add_argument("-o", "--output", metavar="OUT.safetensors", help="beside CKPT")
    parser.set_defaults(run=cmd_export)

"""``dtg score FILE --checkpoint CKPT [--data test|train|PATH] [-o scores.npy] [--json]``.

Per-example scores (:mod:`dtg.runtime.score`): for a data model the negative ELBO of each example
of ``--data`` — the declared source's held-out split (``test``, the default), its training split
(``train``), or every row of a data file (``.npy``, ``.npz``, ``.csv``, ``.pt``) checked against
the declared space — in nats; for a sampler the log-weights of ``-n`` generated trajectories.
``-o`` writes the scores (float64, one per example, in the data's row order) as ``.npy``; the
summary (count, mean and quantiles, in nats and bits) is printed as a table or JSON. With
``--reference PATH`` (or ``test``/``train``) the reference's examples are scored too and the AUROC
of "NELBO above the reference's" is printed: how well the score tells the two apart.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..errors import DtgDataError
from .errors import usage
from .files import write_atomic
from .models import add_checkpoint_arguments, add_model_arguments, restore
from .printing import json_safe, npy_bytes, table

__all__ = ["register", "cmd_score"]

SPLITS = ("test", "train")


def _rows(model: Any, data: str, train_size: int) -> tuple[Any, dict]:
    """The rows ``--data`` names and the dataset's meta (for bits).

    :param train_size: the run's ``train_size``: ``train`` means the rows it trained on.
    """
    import torch  # heavy: torch itself

    from ..data.dataset import dequantize  # heavy: imports torch
    from ..data.errors import DataError  # lazy: with the data package
    from ..data.files import read_rows  # lazy: with the data package
    from ..runtime.heldout import training_rows  # heavy: imports torch
    from ..runtime.loop import DATA_SPLIT_SEED  # heavy: imports torch

    dataset = model.dataset(DATA_SPLIT_SEED)
    if data == "test":  # dequantised once by the source, as dtg eval scores it
        return dataset.test, dataset.meta
    if data == "train":
        rows = training_rows(dataset, train_size).train
    else:
        if not Path(data).exists():
            raise usage(f"--data {data}: no such file (or say 'test' or 'train' for the splits)")
        try:
            rows = read_rows(data, model.ir.message.space)
        except DataError as error:
            raise DtgDataError(error.message, hints=[error.hint] if error.hint else []) from None
        dtype = torch.long if model.ir.message.space.kind == "token" else torch.float32
        rows = torch.as_tensor(rows, dtype=dtype)
    if dataset.meta.get("dequantized"):  # the same noise for every call, as the test split's
        noise = torch.Generator().manual_seed(DATA_SPLIT_SEED)
        rows = dequantize(rows.cpu(), dataset.meta["quantization_step"], noise)
    return rows, dataset.meta


def _summary(nats: Any, bits: Any | None) -> dict[str, float]:
    out = {"examples": float(len(nats)), "mean_nats": float(nats.mean())}
    for q in (0.05, 0.5, 0.95):
        out[f"q{int(q * 100):02d}_nats"] = float(nats.quantile(q))
    if bits is not None:
        out["mean_bits"] = float(bits.mean())
    return out


def cmd_score(args: argparse.Namespace) -> int:
    """Score examples (or trajectories) and print the summary; write them with ``-o``.

    :returns: 0.
    :raises UsageError: for a bad ``--data``, ``--repeats`` or output folder.
    """
    from ..runtime.checkpoint import checkpoint_file  # heavy: imports torch
    from ..runtime.score import auroc, bits, score_examples, score_sampler  # heavy: torch

    for flag, value in (("--repeats", args.repeats), ("--batch", args.batch)):
        if value < 1:
            raise usage(f"{flag} must be at least 1, got {value}")
    if args.output and not Path(args.output).resolve().parent.is_dir():
        raise usage(f"the folder of {args.output} does not exist")
    if args.output and Path(args.output).suffix != ".npy":
        raise usage(f"-o {args.output}: scores are written as .npy (name it SCORES.npy)")
    checkpoint_file(args.checkpoint)
    _, model, content = restore(args)
    head: dict[str, Any] = {"model": model.ir.name, "step": int(content["step"])}
    if not model.needs_data:
        if args.data != "test" or args.reference:
            raise usage(f"model '{model.ir.name}' is a sampler: it scores -n trajectories, no data")
        scores = score_sampler(model, args.n, seed=args.seed)
        summary = {"trajectories": float(len(scores)), "mean_log_weight": float(scores.mean())}
        head["scores"] = "log-weights of generated trajectories"
    else:
        train_size = int((content.get("train_options") or {}).get("train_size", 0))
        rows, meta = _rows(model, args.data, train_size)
        scores = score_examples(model, rows, args.batch, args.seed, args.repeats)
        summary = _summary(scores, bits(model, scores, meta))
        head.update(data=args.data, scores="negative ELBO per example (nats)")
        if args.reference:
            reference, _ = _rows(model, args.reference, train_size)
            against = score_examples(model, reference, args.batch, args.seed, args.repeats)
            summary["reference_mean_nats"] = float(against.mean())
            summary["auroc_vs_reference"] = auroc(scores, against)
    if args.output:
        write_atomic(Path(args.output), npy_bytes(scores.numpy()))
        head["written"] = args.output
    if args.json:
        print(json.dumps(json_safe({**head, **summary}), indent=2))
    else:
        rows_ = [(k, str(v)) for k, v in head.items()]
        rows_ += [(k, f"{v:.6g}") for k, v in summary.items()]
        print(table(rows_))
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``score`` to the ``dtg`` subcommands."""
    parser = commands.add_parser(
        "score", help="per-example negative ELBO (or a sampler's log-weights)"
    )
    add_model_arguments(parser)
    add_checkpoint_arguments(parser)
    parser.add_argument(
        "--data", default="test", metavar="test|train|PATH",
        help="the held-out split (default), the training split, or a data file",
    )  # fmt: skip
    parser.add_argument(
        "--reference", metavar="test|train|PATH",
        help="score these too and print the AUROC of telling --data from them",
    )  # fmt: skip
    parser.add_argument("-o", "--output", metavar="SCORES.npy", help="write the scores here")
    parser.add_argument("--batch", type=int, default=500, metavar="B", help="examples per pass")
    parser.add_argument(
        "--repeats", type=int, default=1, metavar="K",
        help="average K independent estimates per example (lower Monte-Carlo noise)",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print JSON, not a table")
    parser.set_defaults(run=cmd_score)

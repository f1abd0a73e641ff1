"""Load a compiled model's declared data source (``data x : SPACE ~ source(…)``).

The checker has already bound and validated the source call into the IR's
:class:`~dtg.ir.model.DataSourceSpec`; this module only loads it, so it never reads the syntax
again. A problem found while loading (a missing or malformed file) becomes a
:class:`~dtg.errors.DtgDataError` located at the source call.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..data.dataset import Dataset, load_source
from ..data.errors import DataError
from ..data.space import check_data_space
from ..errors import DtgDataError
from ..ir.model import DataSourceSpec
from ..ir.space import Space

__all__ = ["load_dataset", "load_source_spec"]


def load_source_spec(
    spec: DataSourceSpec,
    space: Space,
    device: torch.device | str = "cpu",
    *,
    seed: int = 0,
    base_dir: Path | None = None,
    source_text: str | None = None,
) -> Dataset:
    """Load a checked data source onto a device.

    :param spec: the bound source call (name, options, span).
    :param space: the declared space of the data.
    :param device: where the tensors go.
    :param seed: seeds the toy generators and the train/test split.
    :param base_dir: the folder a relative ``file`` path starts in (the ``.dtg`` file's folder).
    :param source_text: the ``.dtg`` text, for the excerpt of an error.
    :returns: the :class:`~dtg.data.dataset.Dataset` on ``device``.
    :raises DtgDataError: for any problem with the source or the file, located at ``spec.span``.
    """
    try:
        dataset = load_source(
            spec.name, spec.options, check_data_space(space), seed=seed, base_dir=base_dir
        )
    except DataError as error:
        raise DtgDataError(
            error.message, spec.span, source_text, hints=[error.hint] if error.hint else []
        ) from None
    return dataset.to(device)


def load_dataset(model: Any, seed: int = 0) -> Dataset | None:
    """The model's dataset on its device, or ``None`` for a sampler (no data).

    :param model: a compiled model (``model.ir``, ``model.program``, ``model.device``).
    :param seed: seeds the toy generators and the train/test split.
    :returns: the dataset, or ``None`` when the model's message is not data.
    :raises DtgDataError: for a data declaration without a source, or any problem loading it.
    """
    message = model.ir.message
    if message.role != "data":
        return None
    source_text = getattr(model.program, "source", None)
    if message.source is None:
        raise DtgDataError(
            f"model '{model.ir.name}' declares data without a source",
            message.span,
            source_text,
            hints=['give one: data x : real[2] ~ file("points.npy")'],
        )
    base_dir = Path(getattr(model.program, "file", ".")).resolve().parent
    return load_source_spec(
        message.source,
        message.space,
        model.device,
        seed=seed,
        base_dir=base_dir,
        source_text=source_text,
    )

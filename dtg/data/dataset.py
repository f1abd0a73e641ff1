"""Loaded data as torch tensors: :class:`Dataset` and :func:`load_source`.

This is the only module of :mod:`dtg.data` that imports torch at the top; the package imports
it on first use of ``Dataset`` or ``load_source``, so checking a model never does.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..ir.space import Space
from .dequantize import quantization_meta
from .registry import SOURCES, check_source

__all__ = ["Dataset", "dequantize", "load_source"]

#: Offsets the held-out split's dequantisation noise from the split seed's other streams.
_TEST_NOISE_SEED = 7_919


@dataclass
class Dataset:
    """Loaded data: train and test tensors of the declared space.

    :param train: ``Tensor[N_train, *space.shape]`` (float32 for real, int64 for token).
    :param test: ``Tensor[N_test, *space.shape]``.
    :param space: the declared space.
    :param meta: source, options, seed, sizes, and source-specific extras (labels, path).
    """

    train: Tensor
    test: Tensor
    space: Space
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_train(self) -> int:
        """:returns: the number of training rows."""
        return int(self.train.shape[0])

    @property
    def n_test(self) -> int:
        """:returns: the number of test rows."""
        return int(self.test.shape[0])

    def batches(self, batch: int, generator: torch.Generator) -> Iterator[Tensor]:
        """An endless stream of random training minibatches.

        Rows are sampled uniformly *with replacement*: each batch is
        ``train[torch.randint(N_train, (batch,), generator=generator)]``, so the stream is fully
        determined by the generator's state (and advances it). A dequantised source
        (``meta["dequantized"]``) adds fresh uniform noise ``U[0, Δ)`` to each batch, drawn from
        the same generator after the indices (see :func:`dequantize`).

        :param batch: the batch size B (>= 1).
        :param generator: the random generator (its device is used for the indices).
        :returns: an iterator of ``Tensor[B, *space.shape]`` on the device of ``train``.
        """
        if batch < 1:
            raise ValueError(f"batch size must be >= 1, got {batch}")
        n = self.n_train
        step = self.meta.get("quantization_step") if self.meta.get("dequantized") else None
        while True:
            idx = torch.randint(n, (batch,), generator=generator, device=generator.device)
            rows = self.train[idx.to(self.train.device)]
            yield rows if step is None else dequantize(rows, step, generator)

    def with_train_size(self, n: int, seed: int = 0) -> Dataset:
        """The first ``n`` rows of a fixed random order of the training rows: nested (a smaller
        ``n`` keeps a subset of a larger one's rows), the same for every run of a seed.

        :param n: rows kept, ``1 ≤ n ≤ N_train``.
        :returns: a dataset sharing ``test`` and ``meta`` (``meta["train_index"]`` the rows kept).
        """
        if not 1 <= n <= self.n_train:
            raise ValueError(f"train size {n} is not in [1, {self.n_train}]")
        order = torch.randperm(self.n_train, generator=torch.Generator().manual_seed(seed))
        index = order[:n].sort().values
        meta = {**self.meta, "train_index": index, "n_train": n}
        return Dataset(self.train[index.to(self.train.device)], self.test, self.space, meta)

    def to(self, device: torch.device | str) -> Dataset:
        """:returns: a copy with ``train``, ``test`` and tensor ``meta`` entries on ``device``."""
        meta = {k: v.to(device) if isinstance(v, Tensor) else v for k, v in self.meta.items()}
        return Dataset(self.train.to(device), self.test.to(device), self.space, meta)


def dequantize(rows: Tensor, step: float, generator: torch.Generator) -> Tensor:
    """``rows + u``, ``u ~ U[0, step)`` elementwise: each value spread over its grid cell.

    :param rows: real data ``[B, *shape]`` on a grid of step ``step``.
    :param step: ``Δ``, the grid step.
    :param generator: draws the noise (on its device; advanced by ``rows.numel()`` uniforms).
    :returns: the noisy rows, each value in ``[x, x + Δ)`` (kept below ``x + Δ`` where float
        rounding would reach it).
    """
    noise = torch.rand(rows.shape, generator=generator, device=generator.device)
    noisy = rows + step * noise.to(device=rows.device, dtype=rows.dtype)
    return torch.minimum(noisy, torch.nextafter(rows + step, rows))


def _tensor(value: Any) -> Any:
    """A numpy array as a tensor sharing its memory (loaders return arrays they own)."""
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    return value


def load_source(
    name: str,
    options: Mapping[str, object],
    space: Space,
    *,
    seed: int = 0,
    base_dir: Path | None = None,
) -> Dataset:
    """Load a built-in data source into the declared space.

    :param name: the source name (a key of :data:`~dtg.data.registry.SOURCES`).
    :param options: some or all of its options by name (positional arguments must be bound
        first, e.g. with :func:`~dtg.data.registry.bind_options`); missing ones take their
        defaults.
    :param space: the declared space of the data variable.
    :param seed: seeds the toy generators and every train/test split.
    :param base_dir: the folder relative paths of ``file`` are resolved against (the ``.dtg``
        file's folder); the working directory if ``None``.
    :returns: the :class:`Dataset`; ``train``/``test`` are ``Tensor[N, *space.shape]``.
    :raises DataError: for any problem with the source, its options, or the data.
    """
    opts = check_source(name, options, space)
    rows = SOURCES[name].load(opts, space, seed, base_dir)
    meta = {key: _tensor(value) for key, value in rows.meta.items()}
    dataset = Dataset(_tensor(rows.train), _tensor(rows.test), space, meta)
    dataset.meta.update(
        source=name, options=opts, seed=seed, n_train=dataset.n_train, n_test=dataset.n_test
    )
    dataset.meta.update(quantization_meta(opts, space, SOURCES[name].step))
    if dataset.meta["dequantized"]:  # the held-out split once, from the seed
        noise = torch.Generator().manual_seed(seed * 1_000_003 + _TEST_NOISE_SEED)
        dataset.test = dequantize(dataset.test, dataset.meta["quantization_step"], noise)
    return dataset

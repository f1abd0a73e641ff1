"""Sample-quality figures of models over tokens and over digit images (``dtg eval``).

- Token data (``token(V)[…]``): ``token_frequency_tv``, the total variation between the
  per-position token frequencies of the samples and of held-out data, averaged over positions:
  (1/L) Σᵢ ½ Σᵥ |p̂ᵢ(v) − q̂ᵢ(v)|. A ``[MASK]`` left in a sample counts as a token of its own,
  which the data never has. 0 when the two sets have the same frequencies; 1 when no position
  shares a token.
- Digit images (data ``~ digits()``, real or token): the built-in classifier
  (:mod:`dtg.classifier`) labels each image with its most probable digit.
  ``class_histogram_tv`` is the total variation between the label histograms of the samples and
  of the held-out data, ½ Σ_c |h(c) − h_data(c)|; ``confidence_mean`` and
  ``data_confidence_mean`` the mean probability of the chosen label on samples and on data.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..classifier import class_probabilities

__all__ = [
    "token_frequency_tv",
    "class_histogram",
    "digits_figures",
    "sample_quality",
    "DIGIT_CLASSES",
]

#: The classifier's classes (digits 0..9).
DIGIT_CLASSES = 10


def _frequencies(tokens: Tensor, categories: int) -> Tensor:
    """``[L, categories]``: the share of the examples with each token at each position."""
    flat = tokens.detach().reshape(tokens.shape[0], -1).long().cpu()
    counts = torch.zeros(flat.shape[1], categories, dtype=torch.float64)
    counts.scatter_add_(1, flat.T, torch.ones(flat.T.shape, dtype=torch.float64))
    return counts / flat.shape[0]


def token_frequency_tv(samples: Tensor, data: Tensor, vocab: int) -> float:
    """Per-position token frequencies of samples against data: the mean total variation.

    :param samples: ``[N, *shape]`` token ids in ``0..V`` (``V`` is ``[MASK]``).
    :param data: ``[M, *shape]`` token ids in ``0..V-1``.
    :param vocab: ``V``.
    :returns: the total variation averaged over positions, in [0, 1].
    """
    if tuple(samples.shape[1:]) != tuple(data.shape[1:]):
        raise ValueError(f"samples {tuple(samples.shape)} and data {tuple(data.shape)} differ")
    categories = vocab + 1
    p, q = _frequencies(samples, categories), _frequencies(data, categories)
    return float(0.5 * (p - q).abs().sum(dim=1).mean())


def class_histogram(images: Tensor, vocab: int | None) -> tuple[Tensor, Tensor]:
    """The classifier's label histogram of a set of digit images and its confidences.

    :param images: ``[N, 64]`` or ``[N, 8, 8]``: reals in [-1, 1], or tokens when ``vocab``.
    :param vocab: the grey levels of token images (``None`` for reals).
    :returns: ``(histogram [10], confidence [N])``: the share of images labelled with each
        digit, and each image's probability of its label.
    """
    probs = class_probabilities(images.reshape(images.shape[0], 64), vocab).double().cpu()
    confidence, label = probs.max(dim=1)
    histogram = torch.bincount(label, minlength=DIGIT_CLASSES).double() / len(label)
    return histogram, confidence


def digits_figures(samples: Tensor, data: Tensor, vocab: int | None) -> dict[str, float]:
    """The classifier's figures of samples against held-out data (see the module docstring).

    :param samples: ``[N, 64]`` images (real, or tokens with ``vocab``).
    :param data: ``[M, 64]`` held-out images of the same kind.
    :param vocab: the grey levels of token images (``None`` for reals).
    :returns: ``class_histogram_tv``, ``confidence_mean``, ``data_confidence_mean``.
    """
    h_samples, c_samples = class_histogram(samples, vocab)
    h_data, c_data = class_histogram(data, vocab)
    return {
        "class_histogram_tv": float(0.5 * (h_samples - h_data).abs().sum()),
        "confidence_mean": float(c_samples.mean()),
        "data_confidence_mean": float(c_data.mean()),
    }


def sample_quality(model: Any, samples: Tensor, data: Tensor) -> dict[str, float]:
    """The figures that fit the model's data: token frequencies, and the classifier's for digits.

    :param model: a compiled data model (its IR says the space and the data source).
    :param samples: ``[N, *shape]`` samples of the model.
    :param data: ``[M, *shape]`` held-out data.
    :returns: ``token_frequency_tv`` for token data; the :func:`digits_figures` for digits;
        nothing for other data.
    """
    message = model.ir.message
    space = message.space
    token = space.kind == "token"
    out: dict[str, float] = {}
    if token:
        out["token_frequency_tv"] = token_frequency_tv(samples, data, int(space.vocab))
    source = getattr(message, "source", None)
    if source is not None and source.name == "digits":
        out.update(digits_figures(samples, data, int(space.vocab) if token else None))
    return out

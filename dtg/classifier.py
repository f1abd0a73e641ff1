"""The built-in digits classifier behind the ``classify(x[0], classes = [...])`` reward.

A small MLP trained on scikit-learn's 8×8 digits (shipped with scikit-learn, no download) the
first time it is needed, then cached as a weights-only checkpoint in the user's cache folder
(``$DTG_CACHE_DIR``, else ``$XDG_CACHE_HOME/dtg``, else ``~/.cache/dtg``). Its held-out accuracy
is checked (≥ 95%) before it is cached; a missing or corrupt cache is retrained.

Inputs are images as ``real[64]`` in [-1, 1] (the ``digits()`` scaling) or ``token(V)[64]``
grey levels; ``log_prob_classes`` returns log Σ_{c ∈ classes} p(c | x), shape ``[B]``, and
``class_probabilities`` the ten p(c | x), shape ``[B, 10]`` (``dtg eval``'s figures for digits).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from .atomic import atomic_writer, make_folder
from .errors import DtgOutputError

__all__ = [
    "cache_dir",
    "class_probabilities",
    "digits_classifier",
    "log_prob_classes",
    "MIN_ACCURACY",
]

MIN_ACCURACY = 0.95
_FILE = "digits_classifier_v1.pt"
_LOADED: dict[str, nn.Module] = {}


def cache_dir() -> Path:
    """Where dtg caches the classifier.

    :returns: ``$DTG_CACHE_DIR``, else ``$XDG_CACHE_HOME/dtg``, else ``~/.cache/dtg``.
    """
    if os.environ.get("DTG_CACHE_DIR"):
        return Path(os.environ["DTG_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dtg"


def _net() -> nn.Module:
    return nn.Sequential(
        nn.Linear(64, 128), nn.SiLU(), nn.Linear(128, 128), nn.SiLU(), nn.Linear(128, 10)
    )


def _data(seed: int = 0) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """scikit-learn's 8×8 digits scaled to [-1, 1]: ``(x_train, y_train, x_test, y_test)``."""
    # sklearn is heavy and needed only to train the classifier once (then it is cached)
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = digits.data.astype(np.float32) / 8.0 - 1.0
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    split = int(0.8 * len(x))
    train, test = order[:split], order[split:]
    return (
        torch.from_numpy(x[train]),
        torch.from_numpy(y[train]),
        torch.from_numpy(x[test]),
        torch.from_numpy(y[test]),
    )


def _train() -> tuple[nn.Module, float]:
    generator = torch.Generator().manual_seed(0)
    x, y, x_test, y_test = _data()
    torch.manual_seed(0)
    net = _net()
    opt = torch.optim.Adam(net.parameters(), lr=2e-3, weight_decay=1e-4)
    for _ in range(25):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), 128):
            index = order[start : start + 128]
            # Light noise makes the classifier robust to imperfect samples.
            noisy = x[index] + 0.1 * torch.randn(len(index), 64, generator=generator)
            loss = nn.functional.cross_entropy(net(noisy), y[index])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        accuracy = float((net(x_test).argmax(1) == y_test).float().mean())
    return net.eval(), accuracy


def digits_classifier(device: torch.device | str = "cpu") -> nn.Module:
    """The cached classifier (trained and cached on first use), frozen, on ``device``.

    :param device: where the returned copy lives (one copy per device is kept).
    :returns: a module mapping images ``[B, 64]`` in [-1, 1] to logits ``[B, 10]``.
    :raises RuntimeError: when training falls short of :data:`MIN_ACCURACY`.
    """
    key = str(device)
    if key in _LOADED:
        return _LOADED[key]
    path = cache_dir() / _FILE
    net = _net()
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        net.load_state_dict(state["weights"])
        accuracy = float(state["accuracy"])
        if accuracy < MIN_ACCURACY:
            raise ValueError("cached classifier below the accuracy bar")
    except Exception:  # noqa: BLE001 - missing, corrupt or stale: retrain
        net, accuracy = _train()
        if accuracy < MIN_ACCURACY:
            raise RuntimeError(
                f"the digits classifier reached only {accuracy:.1%} held-out accuracy"
            ) from None
        try:  # the cache saves the next run half a minute; without it, nothing is lost
            make_folder(path.parent)
            with atomic_writer(path) as file:  # a concurrent reader sees the old cache or new
                torch.save({"weights": net.state_dict(), "accuracy": accuracy}, file)
        except DtgOutputError:
            pass
    net = net.eval().requires_grad_(False).to(device)
    _LOADED[key] = net
    return net


def _log_probs(x: Tensor, vocab: int | None) -> Tensor:
    """``[B, 10]`` log-probabilities of the digits for images ``[B, 64]`` (reals or tokens)."""
    net = digits_classifier(x.device)
    images = x.float()
    if vocab is not None:  # tokens 0..V-1 (a [MASK] id V counts as mid-grey)
        images = images.clamp(max=vocab - 1) / (vocab - 1) * 2.0 - 1.0
    return torch.log_softmax(net(images.reshape(images.shape[0], 64)), dim=-1)


def log_prob_classes(x: Tensor, classes: list[int], vocab: int | None = None) -> Tensor:
    """``log p(class ∈ classes | x)`` under the digits classifier.

    :param x: images ``[B, 64]``: reals in [-1, 1], or grey-level tokens when ``vocab`` is given.
    :param classes: the digits whose probabilities are summed.
    :param vocab: the number of grey levels ``V`` of token images (``None`` for reals).
    :returns: ``[B]``.
    """
    return torch.logsumexp(_log_probs(x, vocab)[:, classes], dim=-1)


def class_probabilities(x: Tensor, vocab: int | None = None) -> Tensor:
    """``p(c | x)`` for the ten digits under the classifier (no gradient).

    :param x: images ``[B, 64]``: reals in [-1, 1], or grey-level tokens when ``vocab`` is given.
    :param vocab: the number of grey levels ``V`` of token images (``None`` for reals).
    :returns: ``[B, 10]``, each row summing to 1.
    """
    with torch.no_grad():
        return _log_probs(x, vocab).exp()

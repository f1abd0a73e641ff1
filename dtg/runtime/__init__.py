"""The runtime: training, checkpoints, evaluation and plots of compiled models.

``train(model)`` runs the training loop (:mod:`dtg.runtime.train` gathers its names),
``evaluate(model)`` reports the metrics of DESIGN.md §6 (:mod:`dtg.runtime.evaluate`), checkpoints
are written atomically and read with ``weights_only=True`` (:mod:`dtg.runtime.checkpoint`), and
``plot_samples`` draws samples beside held-out data (:mod:`dtg.runtime.plots`). Models are
compiled by ``dtg.load(path).compile()``.
"""

from .checkpoint import load_checkpoint, restore_model, save_checkpoint
from .evaluate import evaluate
from .metrics import bits_per_dim, mmd_rbf, sliced_wasserstein
from .plots import plot_samples
from .train import EMA, Run, coerce_option, resolve_device, seed_everything, train

__all__ = [
    "train",
    "Run",
    "EMA",
    "coerce_option",
    "resolve_device",
    "seed_everything",
    "save_checkpoint",
    "load_checkpoint",
    "restore_model",
    "evaluate",
    "mmd_rbf",
    "sliced_wasserstein",
    "bits_per_dim",
    "plot_samples",
]

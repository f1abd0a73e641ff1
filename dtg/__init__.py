"""dtg: a probabilistic-programming language for destroy-then-generate models.

Write how information is withheld from data (a destruction chain) and how a model guesses it
back (a generation chain); dtg checks the file, compiles it to PyTorch objectives and Pyro
programs, trains and samples it, and draws it as a generative commutative diagram.
"""

__version__ = "0.1.0"

from .errors import (  # noqa: E402
    DtgCheckError,
    DtgDataError,
    DtgError,
    DtgLevelError,
    DtgNameError,
    DtgObjectiveError,
    DtgRangeError,
    DtgRuntimeError,
    DtgSyntaxError,
    DtgTypeError,
)
from .plugins import load_plugin, register_reward  # noqa: E402
from .program import Program, load, loads  # noqa: E402


def train(model, **options):
    """Train a compiled model (``dtg.runtime.train.train``): progress, checkpoints, metrics.

    :param model: ``dtg.load(path).compile()``.
    :param options: ``steps``, ``batch``, ``lr``, ``out``, ``seed``, ``resume``, ``overrides``…
    :returns: a :class:`dtg.runtime.train.Run`.
    """
    from .runtime.train import train as _train

    return _train(model, **options)


__all__ = [
    "__version__",
    "load",
    "loads",
    "train",
    "register_reward",
    "load_plugin",
    "Program",
    "DtgError",
    "DtgSyntaxError",
    "DtgCheckError",
    "DtgNameError",
    "DtgTypeError",
    "DtgLevelError",
    "DtgRangeError",
    "DtgObjectiveError",
    "DtgDataError",
    "DtgRuntimeError",
]

"""dtg: a probabilistic-programming language for destroy-then-generate models.

Write how information is withheld from data (a destruction chain) and how a model guesses it
back (a generation chain); dtg checks the file, compiles it to PyTorch objectives and Pyro
programs, trains and samples it, and draws it as a generative commutative diagram.

The names below are imported when first used (PEP 562), so that ``import dtg.entry`` — the
``dtg`` command's first step — loads nothing else and a Ctrl-C during start-up is caught there.
"""

from __future__ import annotations

from ._version import __version__

TYPE_CHECKING = False  # not typing's: importing typing alone takes a noticeable moment
if TYPE_CHECKING:  # for the annotations only; at run time the names load on first use
    from typing import Any

    from .errors import (
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
    from .plugins import load_plugin, register_net, register_reward
    from .program import Program, load, loads
    from .runtime.train import Run

_ERRORS = (
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
)
_PROGRAM = ("load", "loads", "Program")
_PLUGINS = ("register_reward", "register_net", "load_plugin")


def __getattr__(name: str) -> Any:
    if name in _PROGRAM:
        from . import program as home  # lazy: imported on the first use of a name
    elif name in _PLUGINS:
        from . import plugins as home  # lazy: imported on the first use of a name
    elif name in _ERRORS:
        from . import errors as home  # lazy: imported on the first use of a name
    else:
        raise AttributeError(f"module 'dtg' has no attribute '{name}'")
    value = getattr(home, name)
    globals()[name] = value  # later uses skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_PROGRAM, *_PLUGINS, *_ERRORS})


def train(model: Any, **options: Any) -> Run:
    """Train a compiled model (``dtg.runtime.train.train``): progress, checkpoints, metrics.

    :param model: ``dtg.load(path).compile()``.
    :param options: ``steps``, ``batch``, ``lr``, ``out``, ``seed``, ``resume``, ``overrides``…
    :returns: a :class:`dtg.runtime.train.Run`.
    """
    from .runtime.train import train as _train  # torch is heavy: imported when training starts

    return _train(model, **options)


__all__ = [
    "__version__",
    "load",
    "loads",
    "train",
    "register_reward",
    "register_net",
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

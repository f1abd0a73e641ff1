"""User Python, only where the user names it: ``--plugin FILE.py``, ``dtg.register_reward`` and
``dtg.register_net`` (the user's own nets, :mod:`dtg.nets.registry`).

A ``.dtg`` file never runs Python. A reward that the expression language cannot write (a
classifier of your own, a docking score) is a Python function the *user* registers, either in
their own script::

    import dtg

    @dtg.register_reward("smiley")
    def smiley(x):            # x: [B, *shape] samples x[0]  ->  [B] log-rewards
        return -((x - 0.5) ** 2).sum(dim=1)

    model = dtg.load("finetune.dtg").compile()

or in a file they pass on the command line, ``dtg train finetune.dtg --plugin my_rewards.py``,
which dtg imports (runs) before reading the ``.dtg`` file. The model then calls it by name in a
reward statement only: ``reward r(x) = smiley(x)``. Without the plug-in, the same file is an
"unknown function" error; nothing in a ``.dtg`` file can name a Python file to import.

A plug-in that fails, on import or when its reward is called, is the user's error, reported with
the file, the line and what happened: an exception, or a call of ``sys.exit`` (``SystemExit``,
which would otherwise end dtg silently with its status). Ctrl-C stays an interrupt.
"""

from __future__ import annotations

import functools
import importlib.util
import keyword
import re
import sys
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType, ModuleType
from typing import TYPE_CHECKING

from .errors import DtgError, DtgRuntimeError
from .names import RESERVED_NAMES
from .nets.registry import NetRegistryError, register_net, unregister_net
from .targets import TARGETS

if TYPE_CHECKING:
    from torch import Tensor

__all__ = [
    "register_reward",
    "unregister_reward",
    "rewards",
    "load_plugin",
    "PluginError",
    "register_net",
    "unregister_net",
    "NetRegistryError",
]

RewardFn = Callable[["Tensor"], "Tensor"]
_REWARDS: dict[str, RewardFn] = {}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
#: Built-in functions, channels, constants and targets: no Python reward may take these names.
_RESERVED = frozenset({*RESERVED_NAMES, *TARGETS})


class PluginError(ValueError):
    """A plug-in that cannot be loaded or a reward that cannot be registered."""


def register_reward(
    name: str, fn: RewardFn | None = None
) -> RewardFn | Callable[[RewardFn], RewardFn]:
    """Make ``name(x)`` callable in reward statements; usable as a decorator.

    :param name: the name ``.dtg`` files use (an identifier, not a built-in function).
    :param fn: maps samples ``[B, *shape]`` (on the model's device) to log-rewards ``[B]``.
    :returns: ``fn`` (or a decorator when ``fn`` is omitted).
    :raises PluginError: for a bad name or a non-callable.
    """
    if not isinstance(name, str) or not _NAME.match(name) or keyword.iskeyword(name):
        raise PluginError(f"a reward name must be an identifier, got {name!r}")
    if name in _RESERVED:
        raise PluginError(
            f"'{name}' is a built-in name of dtg (a function, channel, constant or target); "
            "choose another name"
        )

    def register(function: RewardFn) -> RewardFn:
        if not callable(function):
            raise PluginError(f"register_reward('{name}', …) needs a function")
        _REWARDS[name] = _guarded(name, function)
        return function

    return register(fn) if fn is not None else register


#: What a plug-in may raise that is its own failure: not Ctrl-C (``KeyboardInterrupt``).
_FAILURES = (Exception, SystemExit, GeneratorExit)


def _failure(error: BaseException, file: str | None) -> str:
    """What went wrong, in words: "called sys.exit(1)" or "failed: KeyError: 'x'", with the
    line of ``file`` where it happened when the traceback passes through it."""
    lines = [f.lineno for f in traceback.extract_tb(error.__traceback__) if f.filename == file]
    at = f" (line {lines[-1]})" if lines else ""
    if isinstance(error, SystemExit):
        code = "" if error.code is None else repr(error.code)
        return f"called sys.exit({code}){at}; a plug-in must not exit"
    detail = f": {error}" if str(error) else ""
    return f"failed: {type(error).__name__}{detail}{at}"


def _guarded(name: str, function: RewardFn) -> RewardFn:
    """``function``, whose failures (``sys.exit`` included) become a :class:`DtgRuntimeError`
    naming the reward and its file."""
    file = getattr(getattr(function, "__code__", None), "co_filename", None)

    @functools.wraps(function)
    def reward(x: Tensor) -> Tensor:
        try:
            return function(x)
        except DtgError:
            raise
        except _FAILURES as error:  # the user's code: say so, not "internal error"
            where = f" in {file}" if file else ""
            raise DtgRuntimeError(
                f"the plug-in reward '{name}'{where} {_failure(error, file)}"
            ) from error

    return reward


def unregister_reward(name: str) -> None:
    """Forget a registered reward (no error when it is not registered)."""
    _REWARDS.pop(name, None)


def rewards() -> Mapping[str, RewardFn]:
    """The registered rewards, read-only."""
    return MappingProxyType(_REWARDS)


def load_plugin(path: str | Path) -> ModuleType:
    """Import the Python file ``path`` (it registers rewards when imported).

    :raises PluginError: when the file is missing, is not a ``.py`` file, or fails to import
        (the message names the file and the error, or the ``sys.exit`` it called).
    """
    path = Path(path)
    if not path.is_file():
        raise PluginError(f"no such plug-in file: {path}")
    if path.suffix != ".py":
        raise PluginError(f"a plug-in is a Python file (.py), got {path}")
    module_name = f"dtg_plugin_{re.sub(r'[^A-Za-z0-9_]', '_', path.stem)}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise PluginError(f"cannot import the plug-in {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)  # the user named this file: running it is the point
    except _FAILURES as error:  # reported with the file's name; Ctrl-C stays an interrupt
        sys.modules.pop(module_name, None)
        raise PluginError(f"the plug-in {path} {_failure(error, spec.origin)}") from None
    return module

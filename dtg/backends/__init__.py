"""Backends of a checked model: the Pyro lowering and the emitted Pyro source (DESIGN.md §4).

* :func:`dtg.backends.pyro.lower` — ``(model_fn, guide_fn)`` Pyro callables sharing a compiled
  model's nets (the in-memory lowering; used by ``CompiledModel.pyro()`` and ``objective elbo``).
* :func:`dtg.backends.pyro_source.emit_pyro` — readable, runnable Python source of the same model
  and guide (``dtg compile --emit pyro``).

The names are imported lazily: emitting source does not import Pyro.
"""

from __future__ import annotations

from typing import Any

__all__ = ["lower", "emit_pyro"]


def __getattr__(name: str) -> Any:
    if name == "lower":
        from .pyro import lower  # heavy: imports pyro and torch

        return lower
    if name == "emit_pyro":
        from .pyro_source import emit_pyro  # heavy: imports torch (through the nets)

        return emit_pyro
    raise AttributeError(f"module 'dtg.backends' has no attribute '{name}'")

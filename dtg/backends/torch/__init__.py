"""The torch backend: a checked model lowered to executable PyTorch.

* :mod:`dtg.backends.torch.expr` — IR expressions → batched torch closures.
* :mod:`dtg.backends.torch.model` — :class:`CompiledModel` (nets, channels, objective on one
  device) and :func:`compile_program`.

Importing this package imports torch; the front end never does.
"""

from .model import CompiledModel, compile_program

__all__ = ["CompiledModel", "compile_program"]

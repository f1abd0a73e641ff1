"""Other libraries' warnings stay out of the command line's output unless ``--verbose``.

torch, Pyro, numpy, matplotlib and the rest warn about things a user of ``dtg`` cannot act on:
Pyro's ``Encountered NaN`` before dtg's own message names the channel and level, torch's note on
the pickle protocol of a checkpoint that dtg then refuses anyway, a DDP reducer's advice on
``find_unused_parameters``. :func:`quiet_warnings` hides them for the length of a command:

* Python warnings attributed to any module but dtg's own (``dtg``, ``dtg.*``) and the user's
  plug-ins (imported as ``dtg_plugin_*``) are ignored; dtg's own still show, as Python's
  filters (``-W``, ``PYTHONWARNINGS``) say.
* torch's C++ warnings, which are printed by its logger and not by Python, are silenced with
  ``TORCH_CPP_LOG_LEVEL=ERROR`` unless the user set that variable: it must be set before torch
  is imported, which the command line does only when a command runs, and processes started by
  the command (``--nproc``) inherit it.

With ``--verbose`` nothing is hidden. Everything is restored when the command ends.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["quiet_warnings", "OWN_MODULES", "CPP_LOG_LEVEL"]

#: The modules whose warnings are dtg's own: dtg's and the user's plug-ins (a regular expression).
OWN_MODULES = r"dtg(?:\.|$)|dtg_plugin_"
#: The environment variable of torch's C++ logger, and the level set when it is quiet.
CPP_LOG_LEVEL = ("TORCH_CPP_LOG_LEVEL", "ERROR")


@contextmanager
def quiet_warnings(verbose: bool) -> Iterator[None]:
    """Hide other libraries' warnings while the ``with`` block runs (see the module docstring).

    :param verbose: show every warning (``--verbose``): then this changes nothing.
    :returns: a context manager; the warning filters and the environment are restored after.
    """
    if verbose:
        yield
        return
    name, level = CPP_LOG_LEVEL
    ours = name not in os.environ
    if ours:
        os.environ[name] = level
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module=rf"(?!{OWN_MODULES}).*")
            yield
    finally:
        if ours:
            os.environ.pop(name, None)

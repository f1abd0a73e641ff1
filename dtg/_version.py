"""The version of dtg, in a module of its own.

``dtg/__init__.py`` re-exports it as ``dtg.__version__``; modules inside the package that record
it (checkpoints) import it from here, so that none of them imports the package's ``__init__``
back (that was an import circle: ``dtg`` → ``runtime.train`` → ``runtime.checkpoint`` → ``dtg``).
"""

__all__ = ["__version__"]

__version__ = "0.1.0"

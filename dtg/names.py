"""The built-in names of the ``.dtg`` language: functions, channels, constants and values.

Plain tuples of strings, imported by whoever needs to know what a name means or whether it is
taken (the checker, the plug-in registry, the lexer); nothing here imports anything. The
built-in *targets* (``gmm25`` …) are named by :data:`dtg.targets.TARGETS` and the net
architectures by :data:`dtg.nets.ARCHITECTURES`.
"""

from __future__ import annotations

__all__ = [
    "BINARY_FUNCTIONS",
    "BUILTIN_FUNCTIONS",
    "HYPERSCHEDULES",
    "CHANNELS",
    "CLASSIFY",
    "CONSTANT_NAMES",
    "GRAD",
    "MATH_FUNCTIONS",
    "REDUCTIONS",
    "RESERVED_NAMES",
    "RESERVED_PREFIX",
    "VALUE_NAMES",
    "is_reserved",
]

#: Elementwise functions of one argument (their sympy meaning is in :mod:`dtg.check.symbolic`).
MATH_FUNCTIONS = (
    "sqrt", "exp", "log", "cos", "sin", "tanh", "sigmoid", "softplus", "abs", "floor",
)  # fmt: skip
#: Elementwise functions of two arguments; a scalar argument broadcasts.
BINARY_FUNCTIONS = ("min", "max")
#: Reductions over all dimensions of one example.
REDUCTIONS = ("sum", "mean")
#: The built-in digits classifier's reward, ``classify(x[0], classes = [...])``.
CLASSIFY = "classify"
#: The gradient of the model's reward at a level, ``grad(logr, x[t])``.
GRAD = "grad"
#: The built-in hyperschedules (per-position noise levels τ(t, i); dtg.check.hyper).
HYPERSCHEDULES = ("simple_annealing", "block_annealing", "hybrid_annealing")
#: Every built-in function a ``.dtg`` expression can call.
BUILTIN_FUNCTIONS = (
    *MATH_FUNCTIONS, *BINARY_FUNCTIONS, *REDUCTIONS, *HYPERSCHEDULES, CLASSIFY, GRAD,
)  # fmt: skip
#: Kernels: distributions and channels.
CHANNELS = ("Normal", "Categorical", "Mask", "Shuffle", "MashLast", "MashRandom", "Guess")
#: Named numeric constants.
CONSTANT_NAMES = ("pi", "e")
#: Named non-numeric values.
VALUE_NAMES = ("masked", "true", "false")
#: Names a user may not give to a Python reward (targets aside: see :data:`dtg.targets.TARGETS`).
RESERVED_NAMES = frozenset({*BUILTIN_FUNCTIONS, *CHANNELS, *CONSTANT_NAMES, *VALUE_NAMES})
#: Names beginning with this are Python's (``__import__``, ``__class__``): refused everywhere, as
#: the name of any declaration and in any expression.
RESERVED_PREFIX = "__"


def is_reserved(name: str) -> bool:
    """Whether ``name`` begins with :data:`RESERVED_PREFIX` and so may not appear in a ``.dtg``.

    :param name: a name as written.
    :returns: ``True`` for ``__import__``, ``__x`` …
    """
    return name.startswith(RESERVED_PREFIX)

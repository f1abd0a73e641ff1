"""Check the three kernels of a model and classify each into a channel family.

* ``destroy x[t] ~ …`` reads ``x[t-1]`` only: ``Normal`` (linear-Gaussian when sympy proves
  ``mean = a(t)·x[t-1]`` with fixed ``a`` and ``s``), ``Mask``, ``Shuffle``, or ``= MashLast(…)``.
* ``generate x[t-1] ~ …`` reads ``x[t]`` only: ``Guess`` (the destruction's posterior at a
  predicted ``x[0]``), ``Normal`` or ``Categorical``.
* ``generate x[T] …`` reads nothing: ``= 0``, ``= masked``, ``~ Normal(c, c)``, ``~ Categorical(logits = c)``.

Parameters are tabulated over ``t = 0..T`` in float64 and range-checked on every level; a final
step into a singleton (std 0 or keep 0 at ``t = T``) is allowed.
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from ..errors import DtgRangeError
from ..ir import Channel, Family
from ..ir.printer import to_text
from ..marginals import discrete_alpha, gaussian_tables
from ..syntax.printer import brief
from . import symbolic
from .destroy import DestroyKernels
from .generate import PREDICT, VARIANCE, GenerateKernels
from .kernel_base import T

__all__ = ["KernelChecker", "PREDICT", "VARIANCE"]


class KernelChecker(DestroyKernels, GenerateKernels):
    """Checks ``destroy``, ``generate`` and the start of one model (see the module docstring)."""

    # ------------------------------------------------------------------ the two ends
    def check_ends(self, destroy: Channel, start: Channel) -> None:
        """The destruction must reach what generation starts from; std 0 only into a singleton."""
        final = self.steps
        singleton = start.family is Family.SINGLETON
        if destroy.family is Family.LINEAR_GAUSSIAN:
            s = destroy.tables["s"]
            for t in range(1, final + 1):
                if s[t] < 0 or (s[t] == 0 and not (t == final and singleton)):
                    raise self.err(
                        DtgRangeError,
                        f"std = {s[t]:.6g} at level t = {t}: a standard deviation must be positive"
                        + (
                            " (std = 0 is allowed only at t = T, into a singleton start)"
                            if s[t] == 0
                            else ""
                        ),
                        destroy.args["std"].span or destroy.span,
                    )
        if singleton and start.params.get("value") != "masked":
            if destroy.family is Family.LINEAR_GAUSSIAN:
                a, s = destroy.tables["a"][final], destroy.tables["s"][final]
                value = start.params["value"]
                if s != 0 or (a != 0 and value != 0):
                    raise self.err(
                        DtgRangeError,
                        f"generation starts at the point {value:g}, but destruction does not end there "
                        f"(at t = T the mean coefficient is {a:.6g} and the std {s:.6g})",
                        start.span,
                        "the last destroy step must be deterministic into the point: std(T) = 0",
                    )
            elif destroy.family is Family.NORMAL:
                std_at_end = sp.simplify(destroy.params["std"].subs(T, final))
                if std_at_end != 0:
                    shown = brief(to_text(destroy.args["std"], self.steps_name))
                    if std_at_end.free_symbols or symbolic.nets_in(std_at_end):
                        value = f"it depends on {self.message}[t-1] or a net there"
                    else:
                        value = f"it is {symbolic.table(std_at_end, 0)[0]:.6g} there"
                    raise self.err(
                        DtgRangeError,
                        f"generation starts at a point, but the destroy std {shown} is not 0 at "
                        f"t = {self.steps_name} ({value})",
                        start.span,
                        "the last destroy step must be deterministic into the point: std = 0 "
                        f"at t = {self.steps_name}",
                    )
        if start.params.get("value") == "masked":
            if destroy.family is Family.MASK and destroy.tables["keep"][final] != 0:
                raise self.err(
                    DtgRangeError,
                    f"generation starts all-masked, but destruction keeps each position at t = T with "
                    f"probability {destroy.tables['keep'][final]:.6g}",
                    start.span,
                    "make keep = 0 at t = T, e.g. keep = alpha(t)/alpha(t-1) with alpha(T) = 0",
                )

    def marginals(self, destroy: Channel) -> dict[str, np.ndarray]:
        """Closed-form marginal and posterior tables of the destruction, where they exist."""
        if destroy.family is Family.LINEAR_GAUSSIAN:
            return gaussian_tables(destroy.tables["a"], destroy.tables["s"])
        if destroy.family in (Family.MASK, Family.SHUFFLE):
            return discrete_alpha(destroy.tables["keep"])
        return {}

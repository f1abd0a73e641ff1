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

from collections.abc import Sequence

import numpy as np
import sympy as sp

from ..errors import DtgRangeError
from ..ir import Channel, Family
from ..ir.printer import to_text
from ..marginals import discrete_alpha, gaussian_tables
from ..syntax.printer import brief
from . import exact, symbolic
from .destroy import DestroyKernels
from .generate import PREDICT, VARIANCE, GenerateKernels
from .kernel_base import T
from .levels import LevelKernels

__all__ = ["KernelChecker", "PREDICT", "VARIANCE", "EPSILON_FLOOR"]

#: ε-prediction's error is multiplied by 1 / a_t at a step x[t] = a_t x[t-1] + s_t ε: below
#: this (a float64 rounding of 0, such as sqrt(cos(π/2)² / ᾱ(T-1)) ≈ 8e-16) it is refused.
EPSILON_FLOOR = 1e-8


class KernelChecker(DestroyKernels, GenerateKernels, LevelKernels):
    """Checks ``destroy``, ``generate`` and the start of one model (see the module docstring),
    and kernels for single levels (:mod:`dtg.check.levels`)."""

    # ------------------------------------------------------------------ the two ends
    def check_ends(
        self, destroy: Channel, start: Channel, levels: Sequence[int] | None = None
    ) -> None:
        """The destruction must reach what generation starts from; std 0 only into a singleton.

        :param levels: the levels ``destroy`` runs at (all by default).
        """
        final = self.steps
        singleton = start.family is Family.SINGLETON
        if destroy.family is Family.LINEAR_GAUSSIAN:
            self.check_stds(destroy, singleton, levels)
        if singleton and start.params.get("value") != "masked":
            if destroy.family is Family.LINEAR_GAUSSIAN:
                value = start.params["value"]
                a, s = destroy.tables["a"], destroy.tables["s"]
                # x[T] is the point: where the mean coefficient is exactly 0, so are the variance
                # v_T and the posterior's weight of x[T] (and it must be, unless value = 0).
                for index in np.ndindex(*a.shape[1:]):
                    entry = a[(final, *index)]
                    if exact.near(entry, 0.0) and exact.exactly(
                        _entry(destroy.params["a"], index), final, 0.0
                    ):
                        a[(final, *index)] = 0.0
                if np.any(s[final] != 0) or (np.any(a[final] != 0) and value != 0):
                    raise self.err(
                        DtgRangeError,
                        f"generation starts at the point {value:g}, but destruction does not end there "
                        f"(at t = T the mean coefficient is {_shown(a[final])} and the std "
                        f"{_shown(s[final])})",
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
        per_position = destroy.family is Family.MASK and destroy.tables["keep"].ndim > 1
        if start.params.get("value") == "masked" and per_position:
            kept = destroy.tables["keep"][1:].prod(axis=0).reshape(-1)  # α(T, i)
            if kept.any():
                i = int(np.flatnonzero(kept)[0])
                raise self.err(
                    DtgRangeError,
                    f"generation starts all-masked, but destruction leaves position i = {i} "
                    f"unmasked at t = {self.steps_name} with probability {kept[i]:.6g}",
                    start.span,
                    "every position's keep must reach α(T, i) = 0: keep(t, i) = 0 at some level",
                )
        elif start.params.get("value") == "masked":
            keep = destroy.tables["keep"][final] if destroy.family is Family.MASK else 0.0
            if exact.near(keep, 0.0):  # not proven 0 when the kernel was checked
                shown = brief(to_text(destroy.args["keep"], self.steps_name))
                message, hint = exact.within_rounding(
                    f"the keep probability {shown}", keep, 0.0, final,
                    exact.exactly(destroy.params["keep"], final, 0.0),
                    "generation starts all-masked, so it must be 0 at t = T",
                )  # fmt: skip
                raise self.err(DtgRangeError, message, destroy.args["keep"].span, hint)
            if destroy.family is Family.MASK and destroy.tables["keep"][final] != 0:
                raise self.err(
                    DtgRangeError,
                    f"generation starts all-masked, but destruction keeps each position at t = T with "
                    f"probability {destroy.tables['keep'][final]:.6g}",
                    start.span,
                    "make keep = 0 at t = T, e.g. keep = alpha(t)/alpha(t-1) with alpha(T) = 0",
                )

    def check_stds(
        self, destroy: Channel, singleton: bool, levels: Sequence[int] | None = None
    ) -> None:
        """Every std of a linear-Gaussian destruction is positive; 0 only at t = T into a
        singleton start, decided exactly (see :mod:`dtg.check.exact`).

        :param levels: the levels it runs at (a template beside per-level kernels); all by default.
        """
        final, s = self.steps, destroy.tables["s"]
        node = destroy.args["std"]
        span = node.span or destroy.span
        shown = f"the std {brief(to_text(node, self.steps_name))}"
        for t in levels if levels is not None else range(1, final + 1):
            point = t == final and singleton
            for index in np.ndindex(*s.shape[1:]):
                value = s[(t, *index)]
                if exact.near(value, 0.0) and (value < 0 or point):
                    proven = exact.exactly(_entry(destroy.params["s"], index), t, 0.0)
                    if proven:
                        s[(t, *index)] = value = 0.0
                    else:
                        need = (
                            "generation starts at a point, so it must be 0 at t = T"
                            if point
                            else "a standard deviation must not be negative"
                        )
                        message, hint = exact.within_rounding(shown, value, 0.0, t, proven, need)
                        raise self.err(DtgRangeError, message, span, hint)
                if value < 0 or (value == 0 and not point):
                    if value < 0:
                        self._blame_schedule(node, t, shown, span, anywhere=True)
                    raise self.err(
                        DtgRangeError,
                        f"std = {value:.6g} at level t = {t}: a standard deviation must be positive"
                        + (
                            " (std = 0 is allowed only at t = T, into a singleton start)"
                            if value == 0
                            else ""
                        ),
                        span,
                    )

    def check_guess(self, generate: Channel, destroy: Channel) -> None:
        """ε-prediction recovers x̂[0] = (x[t] − σ_t·ε̂) / m_t and the step weighs it by the
        posterior's coefficient, so its error is multiplied by β_t / ((1 − ᾱ_t)·a_t): refused
        where a destroy step keeps none of ``x[t-1]`` (a_t = 0, e.g. β(T) = 1 when ᾱ(T) = 0
        exactly), where that factor is unbounded."""
        if generate.family is not Family.GUESS or generate.options.get("predict") != "epsilon":
            return
        if destroy.family is not Family.LINEAR_GAUSSIAN:
            return
        a = destroy.tables["a"]
        zero = [t for t in range(1, self.steps + 1) if np.any(np.abs(a[t]) < EPSILON_FLOOR)]
        if zero:
            value = float(np.min(np.abs(a[zero[0]])))
            shown = "exactly 0" if value == 0 else f"{value:.3g}, below {EPSILON_FLOOR:g}"
            raise self.err(
                DtgRangeError,
                f"Guess predicts epsilon, but the destroy step at level t = {zero[0]} keeps none "
                f"of x[t-1] (its coefficient of x[t-1] is {shown}), so x̂[0] = (x[t] - s·ε̂) / m "
                "is undefined there",
                generate.span,
                "predict = sample or predict = v_prediction instead, or keep a little of x[0] "
                "at t = T (e.g. an offset in a cosine schedule, or beta(t) ≤ 0.999)",
            )

    def marginals(self, destroy: Channel) -> dict[str, np.ndarray]:
        """Closed-form marginal and posterior tables of the destruction, where they exist."""
        if destroy.family is Family.LINEAR_GAUSSIAN:
            return gaussian_tables(destroy.tables["a"], destroy.tables["s"])
        if destroy.family is Family.MASK and "redraw" in destroy.tables:
            # α: still x[0] (never masked nor redrawn); "unmasked": not masked (a_t).
            unmasked = discrete_alpha(destroy.tables["keep"])["alpha"]
            never = discrete_alpha(1.0 - destroy.tables["redraw"])["alpha"]
            return {"alpha": unmasked * never, "unmasked": unmasked, "keep": destroy.tables["keep"]}
        if destroy.family in (Family.MASK, Family.SHUFFLE):
            return discrete_alpha(destroy.tables["keep"])
        return {}


def _entry(values: sp.Expr, index: tuple[int, ...]) -> sp.Expr:
    """Element ``index`` of a per-coordinate parameter (the parameter itself when scalar)."""
    return values[index] if index else values


def _shown(values: np.ndarray) -> str:
    """A table entry as a message shows it: ``0.5`` or ``[0.5, 0.25]``."""
    if np.ndim(values) == 0:
        return f"{float(values):.6g}"
    return "[" + ", ".join(f"{float(v):.6g}" for v in np.ravel(values)) + "]"

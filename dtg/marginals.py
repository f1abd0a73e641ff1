"""Closed-form marginals of the fixed destructions, from their float64 parameter tables.

Numpy only (no sympy, no torch): the checker fills :attr:`dtg.ir.ModelIR.marginals` with them,
and the channels rebuild the discrete ones from a keep table.

References: Ho et al. 2020 (DDPM) for the Gaussian posterior; Austin et al. 2021 (D3PM) for
the absorbing and uniform marginals.
"""

from __future__ import annotations

import numpy as np

__all__ = ["gaussian_tables", "discrete_alpha"]


def gaussian_tables(a: np.ndarray, s: np.ndarray) -> dict[str, np.ndarray]:
    """Marginal and posterior tables of a linear-Gaussian chain x[t] = a_t x[t-1] + s_t ε.

    q(x[t] | x[0]) = N(m_t x[0], v_t) with m_0 = 1, v_0 = 0, m_t = a_t m_{t-1},
    v_t = a_t² v_{t-1} + s_t². The posterior q(x[t-1] | x[t], x[0]) by Gaussian conjugacy is
    N(s_t² m_{t-1}/v_t · x[0] + a_t v_{t-1}/v_t · x[t], v_{t-1} s_t²/v_t); where v_t = 0 (a step
    into the point ``*``), x[t] carries nothing and the posterior is the marginal of x[t-1].

    :param a: mean coefficients, shape ``[T + 1]`` (entry 0 unused).
    :param s: standard deviations, shape ``[T + 1]`` (entry 0 unused).
    :returns: ``mean``, ``var``, ``post_x0``, ``post_xt``, ``post_var``, ``beta`` (= s²), each
        shape ``[T + 1]``; posterior entries at t = 0 are ``nan``.
    """
    steps = len(a) - 1
    mean = np.ones(steps + 1)
    var = np.zeros(steps + 1)
    with np.errstate(all="ignore"):
        return _gaussian_tables(a, s, mean, var, steps)


def _gaussian_tables(a, s, mean, var, steps) -> dict[str, np.ndarray]:
    for t in range(1, steps + 1):
        mean[t] = a[t] * mean[t - 1]
        var[t] = a[t] ** 2 * var[t - 1] + s[t] ** 2
    post_x0 = np.full(steps + 1, np.nan)
    post_xt = np.full(steps + 1, np.nan)
    post_var = np.full(steps + 1, np.nan)
    beta = np.full(steps + 1, np.nan)
    beta[1:] = s[1:] ** 2
    for t in range(1, steps + 1):
        if var[t] > 0:
            post_x0[t] = s[t] ** 2 * mean[t - 1] / var[t]
            post_xt[t] = a[t] * var[t - 1] / var[t]
            post_var[t] = var[t - 1] * s[t] ** 2 / var[t]
        else:
            post_x0[t], post_xt[t], post_var[t] = mean[t - 1], 0.0, var[t - 1]
    return {
        "mean": mean,
        "var": var,
        "post_x0": post_x0,
        "post_xt": post_xt,
        "post_var": post_var,
        "beta": beta,
    }


def discrete_alpha(keep: np.ndarray) -> dict[str, np.ndarray]:
    """α_t = ∏_{k≤t} keep_k: the probability that a position is untouched by level t.

    :param keep: shape ``[T + 1]`` (entry 0 unused).
    :returns: ``alpha`` of shape ``[T + 1]`` with α_0 = 1, and ``keep`` itself.
    """
    alpha = np.ones(len(keep))
    for t in range(1, len(keep)):
        alpha[t] = alpha[t - 1] * keep[t]
    return {"alpha": alpha, "keep": keep.copy()}

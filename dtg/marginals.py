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

    A per-coordinate (diagonal) chain has tables ``[T + 1, *shape]``: each coordinate is its own
    scalar chain, and every formula above holds elementwise.

    :param a: mean coefficients, shape ``[T + 1]`` or ``[T + 1, *shape]`` (entry 0 unused).
    :param s: standard deviations, the same shape as ``a`` (entry 0 unused).
    :returns: ``mean``, ``var``, ``post_x0``, ``post_xt``, ``post_var``, ``beta`` (= s²), each
        of ``a``'s shape; posterior entries at t = 0 are ``nan``.
    """
    steps = len(a) - 1
    mean = np.ones(a.shape)
    var = np.zeros(a.shape)
    with np.errstate(all="ignore"):
        return _gaussian_tables(a, s, mean, var, steps)


def _gaussian_tables(a, s, mean, var, steps) -> dict[str, np.ndarray]:
    for t in range(1, steps + 1):
        mean[t] = a[t] * mean[t - 1]
        var[t] = a[t] ** 2 * var[t - 1] + s[t] ** 2
    post_x0 = np.full(a.shape, np.nan)
    post_xt = np.full(a.shape, np.nan)
    post_var = np.full(a.shape, np.nan)
    beta = np.full(a.shape, np.nan)
    beta[1:] = s[1:] ** 2
    for t in range(1, steps + 1):
        noisy = var[t] > 0  # elementwise; where 0, x[t] is a point and carries nothing
        post_x0[t] = np.where(noisy, s[t] ** 2 * mean[t - 1] / var[t], mean[t - 1])
        post_xt[t] = np.where(noisy, a[t] * var[t - 1] / var[t], 0.0)
        post_var[t] = np.where(noisy, var[t - 1] * s[t] ** 2 / var[t], var[t - 1])
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

    :param keep: shape ``[T + 1]`` (entry 0 unused), or ``[T + 1, *shape]`` per position.
    :returns: ``alpha`` of the same shape with α_0 = 1, and ``keep`` itself.
    """
    alpha = np.ones(np.shape(keep))
    for t in range(1, len(keep)):
        alpha[t] = alpha[t - 1] * keep[t]
    return {"alpha": alpha, "keep": keep.copy()}

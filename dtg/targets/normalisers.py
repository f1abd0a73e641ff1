"""What is known of each built-in target without torch: log Z and the modes.

``dtg check`` fills a target reward's :class:`~dtg.ir.model.RewardSpec` from here (its log Z and
modes), so the checker needs no torch. The many-well's log Z is a numerical quadrature (numpy,
computed once on first use); :mod:`dtg.targets.densities` samples the many-well by inverse CDF
on the same grid.
"""

from __future__ import annotations

import functools
import math

import numpy as np

__all__ = [
    "GMM25_GRID",
    "GMM25_VAR",
    "MANYWELL_WELLS",
    "manywell_log_f",
    "manywell_tables",
    "manywell_log_z",
    "log_z_of",
    "modes_of",
    "manywell_positive_share",
]

#: gmm25: the component means are the grid's points in 2-D, each with this variance per axis.
GMM25_GRID = (-10.0, -5.0, 0.0, 5.0, 10.0)
GMM25_VAR = 0.3
#: The many-well is 16 independent 2-D wells.
MANYWELL_WELLS = 16

_LOG_2PI = math.log(2.0 * math.pi)


def manywell_log_f(a):
    """The unnormalised 1-D log-density of the first coordinate of one well.

    :param a: a numpy array or a torch tensor.
    :returns: ``-a⁴ + 6a² + a/2``, of the same kind.
    """
    return -(a**4) + 6.0 * a**2 + 0.5 * a


@functools.cache
def manywell_tables() -> tuple[float, np.ndarray, np.ndarray]:
    """Trapezoidal quadrature of one well's first coordinate on ``[-6, 6]`` (its density is
    below e^-800 of its peak outside).

    :returns: ``(log Z1, grid[G], cdf[G])`` in float64, ``G = 240,001``.
    """
    grid = np.linspace(-6.0, 6.0, 240_001)
    lf = manywell_log_f(grid)
    m = float(lf.max())
    f = np.exp(lf - m)
    h = grid[1] - grid[0]
    cum = np.concatenate([[0.0], np.cumsum(0.5 * (f[1:] + f[:-1]) * h)])
    log_z1 = m + math.log(cum[-1])
    return log_z1, grid, cum / cum[-1]


def manywell_positive_share() -> float:
    """P(a > 0) for one well's first coordinate ``a`` (density ∝ exp(−a⁴ + 6a² + a/2)): the
    exact frequency of the positive well, from the quadrature's CDF at 0.

    :returns: the probability (≈ 0.8443: the tilt ``a/2`` favours the positive well).
    """
    _, grid, cdf = manywell_tables()
    return float(1.0 - np.interp(0.0, grid, cdf))


def manywell_log_z() -> float:
    """log Z of the 32-D many-well: ``16 (log Z1 + log √(2π))`` ≈ 164.6957.

    :returns: the value.
    """
    return MANYWELL_WELLS * (manywell_tables()[0] + 0.5 * _LOG_2PI)


def log_z_of(name: str) -> float:
    """``log ∫ exp(log_reward(x)) dx`` of a built-in target.

    :param name: ``gmm25``, ``funnel`` or ``manywell``.
    :returns: 0 for the normalised targets, the quadrature for ``manywell``.
    :raises KeyError: for another name.
    """
    if name in ("gmm25", "funnel"):
        return 0.0
    if name == "manywell":
        return manywell_log_z()
    raise KeyError(name)


def modes_of(name: str) -> tuple[tuple[tuple[float, ...], ...], float | None]:
    """The modes a built-in target declares, and the radius within which a sample covers one.

    Only ``gmm25`` declares modes: its 25 means, radius 3σ = 3·√0.3 ≈ 1.64. The funnel has no
    isolated modes and the many-well's 2¹⁶ cannot be covered by a few thousand samples.

    :param name: a target's name.
    :returns: ``(modes, radius)``; ``((), None)`` for a target without declared modes.
    """
    if name == "gmm25":
        modes = tuple((a, b) for a in GMM25_GRID for b in GMM25_GRID)
        return modes, 3.0 * math.sqrt(GMM25_VAR)
    return (), None

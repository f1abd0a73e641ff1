"""Uniform dequantisation of quantised real data, and the bits per dimension it makes honest.

A continuous density fitted to values on a grid (the digits as ``real[64]`` take the 17 values
``p/8 − 1``, ``p = 0 … 16``) can pile its mass onto the grid points: its density there grows
without bound and the negative log-likelihood in bits per dimension goes negative. Uniform
dequantisation (Uria et al. 2013; Theis et al. 2016) trains and scores the density on
``y = x + u``, ``u ~ U[0, Δ)^D``, with ``Δ`` the grid step. The probability of the grid cell of
``x`` is ``P(x) = ∫ p(x + u) du ≥ Δ^D exp(E_u log p(x + u))`` (Jensen), so

    bits/dim = (NLL + D · ln(1/Δ)) / (D · ln 2) = (NLL − D · ln Δ) / (D · ln 2)

with ``NLL = −E_u log p(x + u)`` in nats, bounds ``−log₂ P(x) / D`` from above: a number of the
discrete data, never negative. (A density uniform on the cells of ``L`` levels scores exactly
``log₂ L``.) The issue wrote ``NLL + D·log Δ`` for the step ``Δ``; the sign is the one above.

``data x : real[64] ~ digits(dequantize = true)`` turns it on (the source knows its step);
``file("pixels.npy", dequantize = 1)`` gives the step of any real source. Every source takes
``dequantize`` by keyword, and the bound options hold it only when it is given. The noise is
added by :meth:`~dtg.data.dataset.Dataset.batches`, fresh for each minibatch from the data
generator; the held-out split is dequantised once, from the split seed. This module is
torch-free: the checker validates the option with it.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

from ..ir.space import Space, SpaceKind
from .errors import DataError

__all__ = [
    "DEQUANTIZE",
    "QuantizedDataWarning",
    "check_dequantize",
    "data_bits_per_dim",
    "dequantized_bits_per_dim",
    "quantization_meta",
]

#: The option every source takes by keyword.
DEQUANTIZE = "dequantize"


class QuantizedDataWarning(UserWarning):
    """Bits per dimension of a continuous density on quantised data that was not dequantised."""


def check_dequantize(
    source: str, options: dict[str, Any], space: Space, step: float | None
) -> float | None:
    """Normalise ``options["dequantize"]`` (when given) to the grid step, in place.

    :param source: the source's name, for messages.
    :param options: the bound options (``dequantize`` absent, ``true``/``false`` or a step).
    :param space: the declared space (dequantisation is for real data).
    :param step: the grid step of the source's real values, or ``None`` when it has none.
    :returns: the step the noise spans, or ``None`` when not dequantising.
    :raises DataError: for token data, ``true`` on a source without a known step, a step on a
        source that has its own, or a value that is neither ``true``/``false`` nor a positive
        number.
    """
    value = options.get(DEQUANTIZE, False)
    if value is False:
        return None
    if space.kind != SpaceKind.REAL:
        raise DataError(
            f"{source}: dequantize adds noise to real data, but the data is declared {space}",
            "token data is discrete already: drop dequantize",
        )
    if value is True:
        if step is None:
            raise DataError(
                f"{source}() has no known quantisation step: give it, dequantize = STEP",
                "e.g. dequantize = 1 for whole numbers, 0.00392 for pixels / 255",
            )
        options[DEQUANTIZE] = step
        return step
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DataError(
            f"{source}: option dequantize must be true, false or a step > 0, got {value!r}"
        )
    if step is not None and value != step:
        raise DataError(
            f"{source}() values are {step:g} apart, not {value!r}: write dequantize = true"
        )
    if not (math.isfinite(value) and value > 0):
        raise DataError(f"{source}: option dequantize must be a step > 0, got {value!r}")
    options[DEQUANTIZE] = float(value)
    return float(value)


def quantization_meta(options: Mapping[str, Any], space: Space, step: float | None) -> dict:
    """The ``meta`` entries a loaded dataset carries about its grid.

    :param options: the checked options (``dequantize`` normalised to a step, or absent/false).
    :param space: the declared space.
    :param step: the source's own grid step of real values, or ``None``.
    :returns: ``quantization_step`` (``Δ``, or ``None`` for continuous or token data) and
        ``dequantized`` (whether batches and the held-out split carry the noise).
    """
    given = options.get(DEQUANTIZE) or None
    if space.kind != SpaceKind.REAL:
        return {"quantization_step": None, "dequantized": False}
    return {"quantization_step": given or step, "dequantized": given is not None}


def dequantized_bits_per_dim(nelbo_nats: float, dims: int, step: float) -> float:
    """``(NLL − D · ln Δ) / (D · ln 2)``: bits per dimension of the discrete data.

    :param nelbo_nats: the negative ELBO (or NLL) of the dequantised data, nats per example.
    :param dims: ``D``, the dimensions of an example.
    :param step: ``Δ``, the grid step the uniform noise spans.
    :returns: an upper bound on ``−log₂ P(x) / D`` of the grid cells (module docstring).
    """
    return (nelbo_nats - dims * math.log(step)) / (dims * math.log(2.0))


def data_bits_per_dim(nelbo_nats: float, dims: int, meta: Mapping[str, Any]) -> float:
    """Bits per dimension of a density on a loaded dataset, by how its data were loaded.

    Dequantised data: :func:`dequantized_bits_per_dim`. Quantised real data that was not
    dequantised: the plain ``NLL / (D · ln 2)``, with a :class:`QuantizedDataWarning` (the
    number is a density's, unbounded below, and not comparable to a discrete model's). Other
    data: the plain number.

    :param nelbo_nats: nats per example.
    :param dims: ``D``.
    :param meta: the dataset's ``meta`` (see :func:`quantization_meta`).
    :returns: bits per dimension.
    """
    step = meta.get("quantization_step")
    if step is not None and meta.get("dequantized"):
        return dequantized_bits_per_dim(nelbo_nats, dims, step)
    if step is not None:
        source = meta.get("source", "the data")
        warnings.warn(
            f"bits/dim of a continuous density on quantised data ({source}: values {step:g} "
            f"apart) can be negative and is no likelihood of the data; train and evaluate with "
            f"{source}(dequantize = true)",
            QuantizedDataWarning,
            stacklevel=2,
        )
    return nelbo_nats / (dims * math.log(2.0))

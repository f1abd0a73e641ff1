"""Generated data: the 2-D toy sets (moons, circles, …) and independent categorical tokens.

The 2-D toys follow the FFJORD toy sets used in many diffusion papers, brought to roughly unit
scale; ``noise`` is the std of Gaussian noise in scikit-learn's ``make_*`` units (before the
fixed rescaling). Points are generated with numpy from the seed, shuffled, and 10% (at least
one) held out as test.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import plural
from ..ir.space import Space, SpaceKind
from .errors import DataError
from .options import as_float, check_n, check_noise
from .rows import Loader, Rows

__all__ = [
    "TOYS",
    "check_categorical",
    "check_checkerboard",
    "check_circles",
    "check_eight_gaussians",
    "check_moons",
    "check_swiss_roll",
    "load_categorical",
    "toy_loader",
]

#: ``generate(rng, options) -> float64 array[n, 2]``.
Generator = Callable[[np.random.Generator, Mapping[str, Any]], np.ndarray]


def _needs_real2(source: str, space: Space) -> None:
    if space.kind != SpaceKind.REAL or space.shape != (2,):
        raise DataError(
            f"{source}() gives real[2] points, but the data is declared {space}",
            f"declare the data as real[2] to use {source}",
        )


def check_moons(options: dict[str, Any], space: Space) -> None:
    """Normalise moons' options in place and check the space (real[2]).

    :param options: ``noise`` and ``n``.
    :param space: the declared space.
    :raises DataError: for a bad value or a space other than real[2].
    """
    check_noise("moons", options)
    check_n("moons", options)
    _needs_real2("moons", space)


def check_circles(options: dict[str, Any], space: Space) -> None:
    """Normalise circles' options (``0 < factor < 1``) in place and check the space (real[2])."""
    check_noise("circles", options)
    options["factor"] = as_float("circles", "factor", options["factor"], 0.0, 1.0, open_low=True)
    check_n("circles", options)
    _needs_real2("circles", space)


def check_eight_gaussians(options: dict[str, Any], space: Space) -> None:
    """Normalise eight_gaussians' options (``std``, ``radius > 0``) and check the space."""
    check_noise("eight_gaussians", options, "std")
    options["radius"] = as_float(
        "eight_gaussians", "radius", options["radius"], 0.0, math.inf, open_low=True
    )
    check_n("eight_gaussians", options)
    _needs_real2("eight_gaussians", space)


def check_swiss_roll(options: dict[str, Any], space: Space) -> None:
    """Normalise swiss_roll's options in place and check the space (real[2])."""
    check_noise("swiss_roll", options)
    check_n("swiss_roll", options)
    _needs_real2("swiss_roll", space)


def check_checkerboard(options: dict[str, Any], space: Space) -> None:
    """Normalise checkerboard's option ``n`` in place and check the space (real[2])."""
    check_n("checkerboard", options)
    _needs_real2("checkerboard", space)


def check_categorical(options: dict[str, Any], space: Space) -> None:
    """Normalise ``probs`` to sum to 1 in place and check the space (``token(len(probs))``).

    :param options: ``probs`` (at least 2 non-negative numbers, not all 0) and ``n``.
    :param space: the declared space.
    :raises DataError: for bad probabilities or a vocabulary other than ``len(probs)``.
    """
    probs = options["probs"]
    if not isinstance(probs, (list, tuple)) or len(probs) < 2:
        raise DataError("categorical: option probs must be a list of at least 2 probabilities")
    values = []
    for p in probs:
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not math.isfinite(p) or p < 0:
            raise DataError(f"categorical: probabilities must be non-negative numbers, got {p!r}")
        values.append(float(p))
    total = sum(values)
    if total <= 0:
        raise DataError("categorical: the probabilities sum to 0")
    options["probs"] = [v / total for v in values]
    check_n("categorical", options)
    if space.kind != SpaceKind.TOKEN or space.vocab != len(values):
        raise DataError(
            f"categorical() gives tokens with {plural(len(values), 'value')}, but the data is "
            f"declared {space}",
            f"declare the data as token({len(values)})[L]",
        )


# --------------------------------------------------------------------------------------------
# generators: float64 arrays [n, 2], in a fixed order (shuffled by the loader)


def _moons(rng: np.random.Generator, o: Mapping[str, Any]) -> np.ndarray:
    n = o["n"]
    n_out = n // 2
    t = rng.uniform(0.0, math.pi, n)
    outer = np.stack([np.cos(t), np.sin(t)], axis=1)
    inner = np.stack([1.0 - np.cos(t), 0.5 - np.sin(t)], axis=1)
    x = np.where((np.arange(n) < n_out)[:, None], outer, inner)
    x = x + o["noise"] * rng.standard_normal((n, 2))
    return 2.0 * (x - np.array([0.5, 0.25]))


def _circles(rng: np.random.Generator, o: Mapping[str, Any]) -> np.ndarray:
    n = o["n"]
    t = rng.uniform(0.0, 2.0 * math.pi, n)
    r = np.where(np.arange(n) < n // 2, 1.0, o["factor"])
    x = r[:, None] * np.stack([np.cos(t), np.sin(t)], axis=1)
    x = x + o["noise"] * rng.standard_normal((n, 2))
    return 2.0 * x


def _eight_gaussians(rng: np.random.Generator, o: Mapping[str, Any]) -> np.ndarray:
    n = o["n"]
    k = rng.integers(0, 8, n)
    angle = k * (math.pi / 4.0)
    centres = o["radius"] * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    return centres + o["std"] * rng.standard_normal((n, 2))


def _swiss_roll(rng: np.random.Generator, o: Mapping[str, Any]) -> np.ndarray:
    n = o["n"]
    t = 1.5 * math.pi * (1.0 + 2.0 * rng.uniform(0.0, 1.0, n))
    x = np.stack([t * np.cos(t), t * np.sin(t)], axis=1)
    x = x + o["noise"] * rng.standard_normal((n, 2))
    return x / 5.0


def _checkerboard(rng: np.random.Generator, o: Mapping[str, Any]) -> np.ndarray:
    n = o["n"]
    x1 = rng.uniform(-2.0, 2.0, n)
    x2 = rng.uniform(0.0, 1.0, n) - 2.0 * rng.integers(0, 2, n) + np.floor(x1) % 2
    return np.stack([x1, x2], axis=1)


#: The generator of each 2-D toy, by source name.
TOYS: dict[str, Generator] = {
    "moons": _moons,
    "circles": _circles,
    "eight_gaussians": _eight_gaussians,
    "swiss_roll": _swiss_roll,
    "checkerboard": _checkerboard,
}


def toy_loader(name: str) -> Loader:
    """The loader of a 2-D toy: generate from the seed, shuffle, hold out 10% (the first rows).

    :param name: a key of :data:`TOYS`.
    :returns: a :data:`~dtg.data.rows.Loader` giving float32 rows of shape ``[2]``.
    """
    generate = TOYS[name]

    def load(options: Mapping[str, Any], space: Space, seed: int, base_dir: Path | None) -> Rows:
        rng = np.random.default_rng(seed)
        x = generate(rng, options)
        x = np.ascontiguousarray(x[rng.permutation(len(x))], dtype=np.float32)
        n_test = max(1, len(x) // 10)
        return Rows(x[n_test:].copy(), x[:n_test].copy())

    load.__name__ = f"load_{name}"
    return load


def load_categorical(
    options: Mapping[str, Any], space: Space, seed: int, base_dir: Path | None
) -> Rows:
    """Independent tokens drawn with ``probs``; the first 10% (at least one) held out as test.

    :param options: the checked options (``probs`` summing to 1, ``n``).
    :param space: the declared ``token(V)[L…]`` space; each row has its shape.
    :param seed: seeds the draw.
    :param base_dir: unused.
    :returns: int64 rows.
    """
    rng = np.random.default_rng(seed)
    x = rng.choice(
        len(options["probs"]), size=(options["n"], *space.shape), p=np.asarray(options["probs"])
    )
    x = x.astype(np.int64)
    n_test = max(1, len(x) // 10)
    return Rows(x[n_test:].copy(), x[:n_test].copy())

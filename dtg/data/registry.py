"""The registry of built-in data sources: their options, and binding and checking a call.

A ``.dtg`` line such as ``data x : real[2] ~ moons(noise = 0.05)`` names a *source* (``moons``),
its options, and the declared *space* (``real[2]``). :func:`bind_options` binds the call's
arguments to the source's options and :func:`check_source` validates them against the space,
without loading anything and without torch: the checker calls both.

To add a source: write its option check and numpy loader (see :mod:`dtg.data.toys`), and add
a :class:`SourceSpec` to :data:`SOURCES`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import did_you_mean
from ..ir.space import Space
from .dequantize import DEQUANTIZE, check_dequantize
from .digits import REAL_STEP, check_digits, load_digits
from .errors import DataError
from .files import check_file, load_file
from .images import IMAGE_STEP, check_images, load_images
from .rows import Loader, OptionCheck
from .space import check_data_space
from .toys import (
    check_categorical,
    check_checkerboard,
    check_circles,
    check_eight_gaussians,
    check_moons,
    check_swiss_roll,
    load_categorical,
    toy_loader,
)

__all__ = ["REQUIRED", "SOURCES", "SourceSpec", "bind_options", "check_source", "source_options"]


class _Required:
    """Marks an option without a default in :data:`SOURCES`."""

    _instance: _Required | None = None

    def __new__(cls) -> _Required:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "REQUIRED"


#: The default of an option that must be given (``file``'s ``path``).
REQUIRED: Any = _Required()


@dataclass(frozen=True)
class SourceSpec:
    """A built-in data source.

    :param name: the name used in ``.dtg`` files.
    :param options: option names in positional order, mapped to their defaults
        (:data:`REQUIRED` for options that must be given).
    :param gives: the space(s) the source produces, for messages (``"real[2]"``).
    :param description: one line for help texts.
    :param check: normalises the bound options in place and checks the declared space.
    :param load: reads or generates the rows (numpy; :func:`dtg.data.load_source` makes tensors).
    :param step: the grid step of the source's ``real`` values when they are quantised (digits:
        1/8), which ``dequantize = true`` spreads noise over; ``None`` for continuous data.
    """

    name: str
    options: Mapping[str, object]
    gives: str
    description: str
    check: OptionCheck
    load: Loader
    step: float | None = None


_TOY_N = 20_000

SOURCES: dict[str, SourceSpec] = {
    spec.name: spec
    for spec in [
        SourceSpec(
            "moons",
            {"noise": 0.05, "n": _TOY_N},
            "real[2]",
            "two interleaving half circles",
            check_moons,
            toy_loader("moons"),
        ),
        SourceSpec(
            "circles",
            {"noise": 0.05, "factor": 0.5, "n": _TOY_N},
            "real[2]",
            "two concentric circles (inner radius = factor * outer radius)",
            check_circles,
            toy_loader("circles"),
        ),
        SourceSpec(
            "eight_gaussians",
            {"std": 0.25, "radius": 2.0, "n": _TOY_N},
            "real[2]",
            "eight Gaussians evenly spaced on a circle",
            check_eight_gaussians,
            toy_loader("eight_gaussians"),
        ),
        SourceSpec(
            "swiss_roll",
            {"noise": 0.5, "n": _TOY_N},
            "real[2]",
            "a 2-D swiss roll (spiral)",
            check_swiss_roll,
            toy_loader("swiss_roll"),
        ),
        SourceSpec(
            "checkerboard",
            {"n": _TOY_N},
            "real[2]",
            "uniform on 8 squares of a 4x4 checkerboard",
            check_checkerboard,
            toy_loader("checkerboard"),
        ),
        SourceSpec(
            "digits",
            {"classes": None},
            "real[64] or token(V)[64]",
            "scikit-learn's 8x8 handwritten digits (1797 images)",
            check_digits,
            load_digits,
            REAL_STEP,
        ),
        SourceSpec(
            "categorical",
            {"probs": REQUIRED, "n": _TOY_N},
            "token(V)[L] with V = len(probs)",
            "independent tokens with the given probabilities (tiny examples)",
            check_categorical,
            load_categorical,
        ),
        SourceSpec(
            "images",
            {"path": REQUIRED},
            "real[C, H, W] or token(V)[C, H, W], C = 1 or 3",
            "a folder of PNG/JPEG pictures, centre-cropped and resized to H x W",
            check_images,
            load_images,
            IMAGE_STEP,
        ),
        SourceSpec(
            "file",
            {"path": REQUIRED, "key": None},
            "the declared space",
            "rows of an array in a .npy, .npz, .csv or .pt file",
            check_file,
            load_file,
        ),
    ]
}


def source_spec(name: str) -> SourceSpec:
    """The registered source ``name``.

    :param name: the source name.
    :returns: its :class:`SourceSpec`.
    :raises DataError: for an unknown source, with a "did you mean" hint.
    """
    try:
        return SOURCES[name]
    except KeyError:
        raise DataError(
            f"unknown data source {name!r}; the built-in sources are {', '.join(SOURCES)}",
            did_you_mean(name, SOURCES),
        ) from None


def source_options(name: str) -> dict[str, object]:
    """The options of a source with their defaults, in positional order.

    :param name: the source name.
    :returns: a fresh dict ``option -> default`` (:data:`REQUIRED` if it has no default).
    :raises DataError: for an unknown source, with a "did you mean" hint.
    """
    return dict(source_spec(name).options)


def bind_options(
    name: str, args: Sequence[object] = (), kwargs: Mapping[str, object] | None = None
) -> dict[str, object]:
    """Bind a call's positional and keyword arguments to a source's options.

    ``file("points.npy")`` binds to ``{"path": "points.npy", "key": None}``.

    :param name: the source name.
    :param args: positional argument values.
    :param kwargs: keyword argument values.
    :returns: every option of the source, given or default, and ``dequantize`` when given
        (values are not validated here; see :func:`check_source`).
    :raises DataError: unknown source or option (with a hint), too many positional arguments,
        an option given twice, or a required option missing.
    """
    spec = source_spec(name)
    names = list(spec.options)
    if len(args) > len(names):
        raise DataError(
            f"{name}() takes at most {len(names)} argument(s), got {len(args)}",
            f"its options are {', '.join(names)}" if names else f"write {name}()",
        )
    given: dict[str, object] = dict(zip(names, args, strict=False))
    for key, value in (kwargs or {}).items():
        if key == DEQUANTIZE:  # every source's, by keyword; bound only when given
            given[key] = value
            continue
        if key not in spec.options:
            hint = did_you_mean(key, names) or (
                f"its options are {', '.join(names)}" if names else f"{name} takes no options"
            )
            raise DataError(f"{name}() has no option {key!r}", hint)
        if key in given:
            raise DataError(f"{name}() got option {key!r} twice")
        given[key] = value
    out = {**spec.options, **given}
    missing = [k for k, v in out.items() if v is REQUIRED]
    if missing:
        raise DataError(f"{name}() needs option {missing[0]!r}", f'e.g. {name}("data.npy")')
    return out


def check_source(name: str, options: Mapping[str, object], space: Space) -> dict[str, Any]:
    """Validate a source's options and the declared space without loading any data.

    For ``file`` only the options are checked: the file's shape is checked on loading.

    :param name: the source name.
    :param options: some or all of the source's options (missing ones take their defaults).
    :param space: the declared space (checked with :func:`~dtg.data.space.check_data_space`).
    :returns: the complete, normalised options.
    :raises DataError: unknown source/option, a bad option value, a space data cannot have, or
        a space the source does not give.
    """
    check_data_space(space)
    opts: dict[str, Any] = bind_options(name, (), options)
    SOURCES[name].check(opts, space)
    check_dequantize(name, opts, space, SOURCES[name].step)
    return opts

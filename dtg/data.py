"""Built-in data sources for ``data`` statements.

A ``.dtg`` line such as ``data x : real[2] ~ moons(noise = 0.05)`` names a *source* (``moons``),
its options, and the declared *space* (``real[2]``). :func:`load_source` turns these into a
:class:`Dataset` with

- ``train``: ``Tensor[N_train, *shape]`` and ``test``: ``Tensor[N_test, *shape]``; float32 for
  ``real`` spaces, int64 in ``0..V-1`` for ``token(V)`` spaces;
- ``meta``: a dict with at least ``source``, ``options``, ``seed``, ``n_train``, ``n_test``.

Sources (options with defaults in positional order; see :data:`SOURCES`):

``moons(noise=0.05, n=20000)``, ``circles(noise=0.05, factor=0.5, n=20000)``,
``eight_gaussians(std=0.25, radius=2.0, n=20000)``, ``swiss_roll(noise=0.5, n=20000)``,
``checkerboard(n=20000)``
    2-D toys, ``real[2]``, generated with numpy from the seed; 10% held out as test. Scales
    follow the FFJORD toy sets used in many diffusion papers, brought to roughly unit scale:
    ``noise`` is the std of Gaussian noise in scikit-learn's ``make_*`` units (before the fixed
    rescaling), as in scikit-learn.
``digits(classes=None)``
    scikit-learn's 8x8 digits (1797 images, shipped with scikit-learn). ``real[64]`` (or
    ``real[8, 8]``): pixels 0..16 scaled to [-1, 1]; ``token(V)[64]`` (or ``[8, 8]``): pixels
    quantised to V levels by ``round(p * (V - 1) / 16)`` (V = 17 is the identity). Split 80/20
    by the seed; labels in ``meta["labels_train"]`` / ``meta["labels_test"]`` (int64) and the
    original image indices in ``meta["index_train"]`` / ``meta["index_test"]``.
``file(path, key=None)``
    ``.npy``, ``.npz`` (the single array, or ``key``), ``.csv`` (numeric, a non-numeric header
    row is skipped; a row may be flattened to the declared shape) or ``.pt`` (a tensor, or a dict
    of tensors with ``key``; loaded with ``weights_only=True``, never unpickled). The first axis
    indexes rows; each row must have the declared shape. ``path`` is relative to the ``.dtg``
    file's folder. 10% of the rows (at least one) are held out as test, chosen by the seed.

Every problem with a source or its data raises :class:`DataError`, whose message names the file
and, where relevant, the first offending row.
"""

from __future__ import annotations

import csv
import difflib
import io
import math
import pickle  # only for pickle.UnpicklingError: dtg never unpickles
import warnings
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "REQUIRED",
    "SOURCES",
    "DataError",
    "DataSpace",
    "Dataset",
    "SourceSpec",
    "bind_options",
    "check_source",
    "load_source",
    "source_options",
]


class DataError(Exception):
    """A user-facing problem with a data source or a data file.

    :param message: what is wrong (names the file and the first offending row where relevant).
    :param hint: an optional suggestion for the fix.
    """

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if self.hint is None else f"{self.message}\nhint: {self.hint}"


@dataclass(frozen=True)
class DataSpace:
    """The declared space of a data variable.

    :param kind: ``"real"`` or ``"token"``.
    :param shape: the shape of one data point, e.g. ``(2,)`` or ``(8, 8)``.
    :param vocab: the vocabulary size V for ``token`` spaces, otherwise ``None``.
    """

    kind: str
    shape: tuple[int, ...]
    vocab: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("real", "token"):
            raise ValueError(f"DataSpace kind must be 'real' or 'token', got {self.kind!r}")
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        if any(s < 1 for s in self.shape):
            raise ValueError(f"DataSpace shape must be positive, got {self.shape}")
        if (self.kind == "token") != (self.vocab is not None):
            raise ValueError("DataSpace vocab is required for token spaces and only for them")
        if self.vocab is not None and self.vocab < 1:
            raise ValueError(f"DataSpace vocab must be positive, got {self.vocab}")

    def __str__(self) -> str:
        dims = ", ".join(str(s) for s in self.shape)
        head = "real" if self.kind == "real" else f"token({self.vocab})"
        return f"{head}[{dims}]" if self.shape else head


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


@dataclass
class Dataset:
    """Loaded data: train and test tensors of the declared space.

    :param train: ``Tensor[N_train, *space.shape]`` (float32 for real, int64 for token).
    :param test: ``Tensor[N_test, *space.shape]``.
    :param space: the declared space.
    :param meta: source, options, seed, sizes, and source-specific extras (labels, path).
    """

    train: Tensor
    test: Tensor
    space: DataSpace
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_train(self) -> int:
        """:returns: the number of training rows."""
        return int(self.train.shape[0])

    @property
    def n_test(self) -> int:
        """:returns: the number of test rows."""
        return int(self.test.shape[0])

    def batches(self, batch: int, generator: torch.Generator) -> Iterator[Tensor]:
        """An endless stream of random training minibatches.

        Rows are sampled uniformly *with replacement*: each batch is
        ``train[torch.randint(N_train, (batch,), generator=generator)]``, so the stream is fully
        determined by the generator's state (and advances it).

        :param batch: the batch size B (>= 1).
        :param generator: the random generator (its device is used for the indices).
        :returns: an iterator of ``Tensor[B, *space.shape]`` on the device of ``train``.
        """
        if batch < 1:
            raise ValueError(f"batch size must be >= 1, got {batch}")
        n = self.n_train
        while True:
            idx = torch.randint(n, (batch,), generator=generator, device=generator.device)
            yield self.train[idx.to(self.train.device)]

    def to(self, device: torch.device | str) -> Dataset:
        """:returns: a copy with ``train``, ``test`` and tensor ``meta`` entries on ``device``."""
        meta = {k: v.to(device) if isinstance(v, Tensor) else v for k, v in self.meta.items()}
        return Dataset(self.train.to(device), self.test.to(device), self.space, meta)


@dataclass(frozen=True)
class SourceSpec:
    """A built-in data source.

    :param name: the name used in ``.dtg`` files.
    :param options: option names in positional order, mapped to their defaults
        (:data:`REQUIRED` for options that must be given).
    :param gives: the space(s) the source produces, for messages (``"real[2]"``).
    :param description: one line for help texts.
    """

    name: str
    options: Mapping[str, object]
    gives: str
    description: str


# --------------------------------------------------------------------------------------------
# option checking


def _suggest(word: str, choices: Sequence[str]) -> str | None:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"did you mean {close[0]!r}?" if close else None


def _as_float(src: str, name: str, value: object, lo: float, hi: float, *, open_lo: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DataError(f"{src}: option {name} must be a number, got {value!r}")
    v = float(value)
    ok = (v > lo if open_lo else v >= lo) and v < hi
    if not ok:
        lo_s = f"> {lo:g}" if open_lo else f">= {lo:g}"
        hi_s = f" and < {hi:g}" if math.isfinite(hi) else ""
        raise DataError(f"{src}: option {name} must be {lo_s}{hi_s}, got {value!r}")
    return v


def _as_int(src: str, name: str, value: object, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise DataError(f"{src}: option {name} must be an integer, got {value!r}")
    if int(value) < lo:
        raise DataError(f"{src}: option {name} must be >= {lo}, got {value!r}")
    return int(value)


def _check_noise(src: str, opts: dict[str, Any], name: str = "noise") -> None:
    opts[name] = _as_float(src, name, opts[name], 0.0, math.inf, open_lo=False)


def _check_n(src: str, opts: dict[str, Any]) -> None:
    opts["n"] = _as_int(src, "n", opts["n"], 10)


def _check_moons(opts: dict[str, Any]) -> None:
    _check_noise("moons", opts)
    _check_n("moons", opts)


def _check_circles(opts: dict[str, Any]) -> None:
    _check_noise("circles", opts)
    opts["factor"] = _as_float("circles", "factor", opts["factor"], 0.0, 1.0, open_lo=True)
    _check_n("circles", opts)


def _check_eight(opts: dict[str, Any]) -> None:
    _check_noise("eight_gaussians", opts, "std")
    opts["radius"] = _as_float(
        "eight_gaussians", "radius", opts["radius"], 0.0, math.inf, open_lo=True
    )
    _check_n("eight_gaussians", opts)


def _check_swiss(opts: dict[str, Any]) -> None:
    _check_noise("swiss_roll", opts)
    _check_n("swiss_roll", opts)


def _check_checker(opts: dict[str, Any]) -> None:
    _check_n("checkerboard", opts)


def _check_digits(opts: dict[str, Any]) -> None:
    classes = opts["classes"]
    if classes is None:
        return
    if isinstance(classes, (int, float)) and not isinstance(classes, bool):
        classes = [classes]
    if not isinstance(classes, (list, tuple)) or not classes:
        raise DataError(
            f"digits: option classes must be a non-empty list of digits, got {classes!r}"
        )
    out: list[int] = []
    for c in classes:
        if isinstance(c, bool) or not isinstance(c, (int, float)) or c != int(c) or not 0 <= c <= 9:
            raise DataError(f"digits: option classes must list digits 0..9, got {c!r}")
        if int(c) in out:
            raise DataError(f"digits: option classes lists {int(c)} twice")
        out.append(int(c))
    opts["classes"] = sorted(out)


def _check_file(opts: dict[str, Any]) -> None:
    path = opts["path"]
    if not isinstance(path, (str, Path)) or not str(path):
        raise DataError(f"file: option path must be a file name in quotes, got {path!r}")
    key = opts["key"]
    if key is not None and not isinstance(key, str):
        raise DataError(f"file: option key must be a name in quotes, got {key!r}")


def _check_categorical(opts: dict[str, Any]) -> None:
    probs = opts["probs"]
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
    opts["probs"] = [v / total for v in values]
    _check_n("categorical", opts)


_TOY_N = 20_000

SOURCES: dict[str, SourceSpec] = {
    "moons": SourceSpec(
        "moons", {"noise": 0.05, "n": _TOY_N}, "real[2]", "two interleaving half circles"
    ),
    "circles": SourceSpec(
        "circles",
        {"noise": 0.05, "factor": 0.5, "n": _TOY_N},
        "real[2]",
        "two concentric circles (inner radius = factor * outer radius)",
    ),
    "eight_gaussians": SourceSpec(
        "eight_gaussians",
        {"std": 0.25, "radius": 2.0, "n": _TOY_N},
        "real[2]",
        "eight Gaussians evenly spaced on a circle",
    ),
    "swiss_roll": SourceSpec(
        "swiss_roll", {"noise": 0.5, "n": _TOY_N}, "real[2]", "a 2-D swiss roll (spiral)"
    ),
    "checkerboard": SourceSpec(
        "checkerboard", {"n": _TOY_N}, "real[2]", "uniform on 8 squares of a 4x4 checkerboard"
    ),
    "digits": SourceSpec(
        "digits",
        {"classes": None},
        "real[64] or token(V)[64]",
        "scikit-learn's 8x8 handwritten digits (1797 images)",
    ),
    "categorical": SourceSpec(
        "categorical",
        {"probs": REQUIRED, "n": _TOY_N},
        "token(V)[L] with V = len(probs)",
        "independent tokens with the given probabilities (tiny examples)",
    ),
    "file": SourceSpec(
        "file",
        {"path": REQUIRED, "key": None},
        "the declared space",
        "rows of an array in a .npy, .npz, .csv or .pt file",
    ),
}

_CHECKS: dict[str, Callable[[dict[str, Any]], None]] = {
    "moons": _check_moons,
    "circles": _check_circles,
    "eight_gaussians": _check_eight,
    "swiss_roll": _check_swiss,
    "checkerboard": _check_checker,
    "digits": _check_digits,
    "categorical": _check_categorical,
    "file": _check_file,
}


def _spec(name: str) -> SourceSpec:
    try:
        return SOURCES[name]
    except KeyError:
        raise DataError(
            f"unknown data source {name!r}; the built-in sources are {', '.join(SOURCES)}",
            _suggest(name, list(SOURCES)),
        ) from None


def source_options(name: str) -> dict[str, object]:
    """The options of a source with their defaults, in positional order.

    :param name: the source name.
    :returns: a fresh dict ``option -> default`` (:data:`REQUIRED` if it has no default).
    :raises DataError: for an unknown source, with a "did you mean" hint.
    """
    return dict(_spec(name).options)


def bind_options(
    name: str, args: Sequence[object] = (), kwargs: Mapping[str, object] | None = None
) -> dict[str, object]:
    """Bind a call's positional and keyword arguments to a source's options.

    ``file("points.npy")`` binds to ``{"path": "points.npy", "key": None}``.

    :param name: the source name.
    :param args: positional argument values.
    :param kwargs: keyword argument values.
    :returns: every option of the source, given or default (values are not validated here;
        see :func:`check_source`).
    :raises DataError: unknown source or option (with a hint), too many positional arguments,
        an option given twice, or a required option missing.
    """
    spec = _spec(name)
    names = list(spec.options)
    if len(args) > len(names):
        raise DataError(
            f"{name}() takes at most {len(names)} argument(s), got {len(args)}",
            f"its options are {', '.join(names)}" if names else f"write {name}()",
        )
    given: dict[str, object] = dict(zip(names, args, strict=False))
    for key, value in (kwargs or {}).items():
        if key not in spec.options:
            hint = _suggest(key, names) or (
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


def _check_space(name: str, space: DataSpace, opts: Mapping[str, Any]) -> None:
    where = f"{name}()"
    if name in ("moons", "circles", "eight_gaussians", "swiss_roll", "checkerboard"):
        if space.kind != "real" or space.shape != (2,):
            raise DataError(
                f"{where} gives real[2] points, but the data is declared {space}",
                f"declare the data as real[2] to use {name}",
            )
    elif name == "categorical":
        if space.kind != "token" or space.vocab != len(opts["probs"]):
            raise DataError(
                f"{where} gives tokens with {len(opts['probs'])} values, but the data is "
                f"declared {space}",
                f"declare the data as token({len(opts['probs'])})[L]",
            )
    elif name == "digits":
        if space.shape not in ((64,), (8, 8)):
            raise DataError(
                f"{where} gives 64 pixels per image, but the data is declared {space}",
                "declare the data as real[64] or token(17)[64] (or [8, 8])",
            )
        if space.kind == "token" and (space.vocab or 0) < 2:
            raise DataError(
                f"{where} needs at least 2 token levels, but the data is declared {space}",
                "token(17)[64] keeps all 17 grey levels",
            )


def check_source(name: str, options: Mapping[str, object], space: DataSpace) -> dict[str, Any]:
    """Validate a source's options and the declared space without loading any data.

    For ``file`` only the options are checked: the file's shape is checked on loading.

    :param name: the source name.
    :param options: some or all of the source's options (missing ones take their defaults).
    :param space: the declared space.
    :returns: the complete, normalised options.
    :raises DataError: unknown source/option, a bad option value, or a space mismatch.
    """
    opts: dict[str, Any] = bind_options(name, (), options)
    _CHECKS[name](opts)
    _check_space(name, space, opts)
    return opts


# --------------------------------------------------------------------------------------------
# toys: float64 numpy arrays [n, 2], shuffled


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


_TOYS: dict[str, Callable[[np.random.Generator, Mapping[str, Any]], np.ndarray]] = {
    "moons": _moons,
    "circles": _circles,
    "eight_gaussians": _eight_gaussians,
    "swiss_roll": _swiss_roll,
    "checkerboard": _checkerboard,
}


def _load_toy(name: str, o: Mapping[str, Any], space: DataSpace, seed: int) -> Dataset:
    rng = np.random.default_rng(seed)
    x = _TOYS[name](rng, o)
    x = x[rng.permutation(len(x))]
    n_test = max(1, len(x) // 10)
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    return Dataset(t[n_test:].clone(), t[:n_test].clone(), space, {})


def _load_categorical(o: Mapping[str, Any], space: DataSpace, seed: int) -> Dataset:
    rng = np.random.default_rng(seed)
    size = (o["n"], *space.shape)
    x = rng.choice(len(o["probs"]), size=size, p=np.asarray(o["probs"]))
    t = torch.from_numpy(x.astype(np.int64))
    n_test = max(1, len(t) // 10)
    return Dataset(t[n_test:].clone(), t[:n_test].clone(), space, {})


# --------------------------------------------------------------------------------------------
# digits


def _load_digits(o: Mapping[str, Any], space: DataSpace, seed: int) -> Dataset:
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise DataError(
            "digits() needs scikit-learn, which is not installed", "pip install scikit-learn"
        ) from None
    bunch = load_digits()
    images = np.asarray(bunch.data, dtype=np.float64)  # [1797, 64], values 0..16
    labels = np.asarray(bunch.target, dtype=np.int64)
    index = np.arange(len(labels))
    if o["classes"] is not None:
        index = index[np.isin(labels, o["classes"])]
    rng = np.random.default_rng(seed)
    index = index[rng.permutation(len(index))]
    n_test = max(1, round(0.2 * len(index)))
    idx_test, idx_train = np.sort(index[:n_test]), np.sort(index[n_test:])
    if space.kind == "real":
        values: np.ndarray = (images / 8.0 - 1.0).astype(np.float32)
    else:
        v = int(space.vocab or 0)
        values = np.rint(images * (v - 1) / 16.0).astype(np.int64)
    t = torch.from_numpy(values).reshape(-1, *space.shape)
    lab = torch.from_numpy(labels)
    meta = {
        "labels_train": lab[idx_train].clone(),
        "labels_test": lab[idx_test].clone(),
        "index_train": torch.from_numpy(idx_train),
        "index_test": torch.from_numpy(idx_test),
    }
    return Dataset(t[idx_train].clone(), t[idx_test].clone(), space, meta)


# --------------------------------------------------------------------------------------------
# files


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def _pick_key(shown: str, keys: list[str], key: str | None, what: str) -> str:
    if key is not None:
        if key not in keys:
            raise DataError(
                f"{shown}: no array named {key!r}; it holds {', '.join(map(repr, keys)) or 'none'}",
                _suggest(key, keys),
            )
        return key
    if len(keys) == 1:
        return keys[0]
    if not keys:
        raise DataError(f"{shown}: the {what} holds no arrays")
    raise DataError(
        f"{shown}: the {what} holds several arrays ({', '.join(map(repr, keys))}); "
        "say which one to use",
        f'file("{shown}", key = "{keys[0]}")',
    )


def _read_npy(path: Path, shown: str, key: str | None) -> np.ndarray:
    with open(path, "rb") as f:
        magic = f.read(6)
    if magic != b"\x93NUMPY":
        raise DataError(
            f"{shown}: not a .npy file (it does not start with the .npy header)",
            "write it with numpy.save",
        )
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as e:
        if "pickle" in str(e):
            raise DataError(
                f"{shown}: the array holds Python objects, which dtg never unpickles",
                "save a numeric array (np.save of a float or int array)",
            ) from None
        raise DataError(f"{shown}: cannot read as a .npy file: {_first_line(e)}") from None
    except Exception as e:  # noqa: BLE001 - any failure of the reader is a corrupt file
        raise DataError(f"{shown}: cannot read as a .npy file: {_first_line(e)}") from None


def _read_npz(path: Path, shown: str, key: str | None) -> np.ndarray:
    if not zipfile.is_zipfile(path):
        raise DataError(
            f"{shown}: not a .npz file (it is not a zip archive)", "write it with numpy.savez"
        )
    try:
        with np.load(path, allow_pickle=False) as z:
            name = _pick_key(shown, list(z.files), key, ".npz archive")
            return np.asarray(z[name])
    except DataError:
        raise
    except ValueError as e:
        if "pickle" in str(e):
            raise DataError(
                f"{shown}: the array holds Python objects, which dtg never unpickles"
            ) from None
        raise DataError(f"{shown}: cannot read as a .npz file: {_first_line(e)}") from None
    except (zipfile.BadZipFile, OSError, EOFError, KeyError) as e:
        raise DataError(f"{shown}: cannot read as a .npz file: {_first_line(e)}") from None


def _read_pt(path: Path, shown: str, key: str | None) -> np.ndarray:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # protocol notes from the weights-only unpickler
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise DataError(
            f"{shown}: cannot read as a tensor file: it is corrupt or holds Python objects "
            "other than tensors (dtg loads .pt files with weights_only=True and never unpickles)",
            "save a single tensor with torch.save(tensor, path)",
        ) from None
    except Exception as e:  # noqa: BLE001 - any other failure of the reader is a corrupt file
        raise DataError(
            f"{shown}: cannot read as a tensor file (torch.load with weights_only=True): "
            f"{_first_line(e)}",
            "save a single tensor with torch.save(tensor, path)",
        ) from None
    if isinstance(obj, Mapping):
        keys = [str(k) for k in obj]
        name = _pick_key(shown, keys, key, "saved dict")
        obj = {str(k): v for k, v in obj.items()}[name]
    if not isinstance(obj, Tensor):
        raise DataError(
            f"{shown}: holds a {type(obj).__name__}, not a tensor",
            "save a single tensor with torch.save(tensor, path)",
        )
    t = obj.detach().cpu()
    if t.is_complex():
        raise DataError(f"{shown}: holds complex numbers; data must be real")
    if t.is_floating_point() and t.dtype not in (torch.float16, torch.float32, torch.float64):
        t = t.float()  # bfloat16 and float8 have no numpy dtype
    return t.numpy()


def _parse_csv(path: Path, shown: str) -> tuple[np.ndarray, list[int]]:
    """:returns: ``(array[rows, cols] float64, line number of each row)``."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(f"{shown}: not a text file; cannot read as .csv") from None
    lines = [(i + 1, ln) for i, ln in enumerate(text.splitlines()) if ln.strip()]
    if not lines:
        raise DataError(f"{shown}: the file has no rows")
    first = lines[0][1]
    delim = "," if "," in first else ";" if ";" in first else None

    def split(line: str) -> list[str]:
        if delim is None:
            return line.split()
        return [c.strip() for c in next(csv.reader(io.StringIO(line), delimiter=delim))]

    rows: list[list[float]] = []
    line_nos: list[int] = []
    width: int | None = None
    for k, (line_no, line) in enumerate(lines):
        cells = split(line)
        try:
            values = [float(c) for c in cells]
        except ValueError:
            if k == 0:
                continue  # a header row
            bad = next(c for c in cells if not _is_float(c))
            raise DataError(
                f"{shown}: line {line_no}: {bad!r} is not a number",
                "a .csv data file must be numeric (an optional header row is skipped)",
            ) from None
        if width is None:
            width = len(values)
        elif len(values) != width:
            raise DataError(
                f"{shown}: line {line_no} has {len(values)} columns, the first row has {width}"
            )
        rows.append(values)
        line_nos.append(line_no)
    if not rows:
        raise DataError(f"{shown}: the file has a header but no rows")
    return np.asarray(rows, dtype=np.float64), line_nos


def _is_float(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def _row_name(i: int, line_nos: list[int] | None) -> str:
    return f"line {line_nos[i]}" if line_nos is not None else f"row {i} (counting from 0)"


def _load_file(o: Mapping[str, Any], space: DataSpace, seed: int, base_dir: Path | None) -> Dataset:
    raw = str(o["path"])
    shown = raw
    path = Path(raw).expanduser()
    if not path.is_absolute():
        path = (base_dir if base_dir is not None else Path.cwd()) / path
    if not path.exists():
        raise DataError(f"{shown}: no such file (looked for {path.absolute()})")
    if path.is_dir():
        raise DataError(f"{shown}: is a folder, not a data file")
    suffix = path.suffix.lower()
    readers = {".npy": _read_npy, ".npz": _read_npz, ".pt": _read_pt, ".pth": _read_pt}
    if suffix not in readers and suffix != ".csv":
        raise DataError(
            f"{shown}: unsupported file type {suffix or '(no extension)'!r}",
            "use a .npy, .npz, .csv or .pt file",
        )
    try:
        if path.stat().st_size == 0:
            raise DataError(f"{shown}: the file is empty")
    except OSError as e:
        raise DataError(f"{shown}: cannot read: {_first_line(e)}") from None
    key = o["key"]
    if key is not None and suffix not in (".npz", ".pt", ".pth"):
        raise DataError(f"{shown}: option key applies only to .npz and .pt files")

    line_nos: list[int] | None = None
    try:
        if suffix == ".csv":
            arr, line_nos = _parse_csv(path, shown)
        else:
            arr = readers[suffix](path, shown, key)
    except PermissionError:
        raise DataError(f"{shown}: permission denied") from None

    arr = np.asarray(arr)
    if arr.dtype.kind == "c":
        raise DataError(f"{shown}: holds complex numbers; data must be real")
    if arr.dtype.kind not in "biuf":
        raise DataError(f"{shown}: holds {arr.dtype} values, not numbers")
    if arr.ndim == 0:
        raise DataError(f"{shown}: holds a single number, not rows of data")
    if arr.shape[0] == 0:
        raise DataError(f"{shown}: holds no rows (array shape {tuple(arr.shape)})")
    row_shape = tuple(arr.shape[1:])
    want = space.shape
    if row_shape != want:
        if row_shape == () and want == (1,):
            arr = arr.reshape(-1, 1)
        elif line_nos is not None and row_shape == (math.prod(want),):
            arr = arr.reshape(-1, *want)
        else:
            found = "single numbers" if row_shape == () else f"shape {list(row_shape)}"
            raise DataError(
                f"{shown}: the data is declared {space}, so each row should have shape "
                f"{list(want)}, but the file's rows have {found} "
                f"(array shape {tuple(arr.shape)})",
                "the first axis indexes rows; change the declared space or the file",
            )
    n = arr.shape[0]
    if n < 2:
        raise DataError(
            f"{shown}: holds only {n} row; at least 2 are needed (one is held out as test)"
        )
    flat = arr.reshape(n, -1)

    if space.kind == "real":
        with np.errstate(over="ignore", invalid="ignore"):
            values = flat.astype(np.float32)  # values beyond float32 become inf: reported below
        bad = ~np.isfinite(values).all(axis=1)
        if bad.any():
            i = int(np.argmax(bad))
            what = "NaN" if np.isnan(values[i]).any() else "an infinite value"
            extra = " (or a value too large for float32)" if what != "NaN" else ""
            raise DataError(f"{shown}: {_row_name(i, line_nos)} contains {what}{extra}")
        data = values.reshape(n, *want)
    else:
        v = int(space.vocab or 0)
        if flat.dtype.kind == "f":
            finite = np.isfinite(flat)
            integral = finite & (flat == np.round(np.where(finite, flat, 0.0)))
            bad_int = ~integral.all(axis=1)
            if bad_int.any():
                i = int(np.argmax(bad_int))
                j = int(np.argmax(~integral[i]))
                raise DataError(
                    f"{shown}: {_row_name(i, line_nos)} has the non-integer value "
                    f"{flat[i, j].item()!r}; token data must be whole numbers 0..{v - 1}"
                )
        ints = flat.astype(np.float64) if flat.dtype.kind == "f" else flat
        out = (ints < 0) | (ints >= v)
        bad_rng = out.any(axis=1)
        if bad_rng.any():
            i = int(np.argmax(bad_rng))
            j = int(np.argmax(out[i]))
            raise DataError(
                f"{shown}: {_row_name(i, line_nos)} has the token {flat[i, j].item()!r}, "
                f"outside 0..{v - 1} for the declared {space}"
            )
        data = flat.astype(np.int64).reshape(n, *want)

    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    n_test = max(1, n // 10)
    idx_test, idx_train = np.sort(perm[:n_test]), np.sort(perm[n_test:])
    t = torch.from_numpy(np.ascontiguousarray(data))
    meta = {
        "path": str(path),
        "index_train": torch.from_numpy(idx_train),
        "index_test": torch.from_numpy(idx_test),
    }
    return Dataset(t[idx_train].clone(), t[idx_test].clone(), space, meta)


# --------------------------------------------------------------------------------------------


def load_source(
    name: str,
    options: Mapping[str, object],
    space: DataSpace,
    *,
    seed: int = 0,
    base_dir: Path | None = None,
) -> Dataset:
    """Load a built-in data source into the declared space.

    :param name: the source name (a key of :data:`SOURCES`).
    :param options: some or all of its options by name (positional arguments must be bound
        first, e.g. with :func:`bind_options`); missing ones take their defaults.
    :param space: the declared space of the data variable.
    :param seed: seeds the toy generators and every train/test split.
    :param base_dir: the folder relative paths of ``file`` are resolved against (the ``.dtg``
        file's folder); the working directory if ``None``.
    :returns: the :class:`Dataset`; ``train``/``test`` are ``Tensor[N, *space.shape]``.
    :raises DataError: for any problem with the source, its options, or the data.
    """
    opts = check_source(name, options, space)
    if name in _TOYS:
        ds = _load_toy(name, opts, space, seed)
    elif name == "digits":
        ds = _load_digits(opts, space, seed)
    elif name == "categorical":
        ds = _load_categorical(opts, space, seed)
    else:
        ds = _load_file(opts, space, seed, base_dir)
    ds.meta.update(source=name, options=opts, seed=seed, n_train=ds.n_train, n_test=ds.n_test)
    return ds

"""What a ``net`` declaration means, without torch: architectures, options, parameter counts.

A declaration such as ``net eps : (real[2], time) -> real[2] = mlp(hidden = [128, 128])`` names an
architecture of :data:`ARCHITECTURES` and options for it. This module validates both against the
input and output spaces (:class:`~dtg.ir.space.Space`) and counts the parameters the built
module would have by formula, so the checker can refuse a bad or oversized net before torch is
imported. :func:`dtg.nets.build_net` builds the module; a test keeps the formula equal to the
built module's ``sum(p.numel())``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from ..errors import did_you_mean, plural
from ..ir.space import Space, SpaceKind
from .registry import registered_nets

__all__ = [
    "ACTIVATIONS",
    "ARCHITECTURES",
    "MAX_PARAMETERS",
    "NetConfigError",
    "check_inputs",
    "count_parameters",
    "describe_spaces",
    "mlp_in_features",
    "resolve_options",
]

MAX_PARAMETERS = 200_000_000
"""Nets whose parameter count exceeds this are refused before allocation."""

ACTIVATIONS = ("silu", "relu", "gelu", "tanh")
"""The names an ``mlp``'s ``activation`` option accepts."""

ARCHITECTURES: Mapping[str, Mapping[str, Any]] = MappingProxyType(
    {
        "mlp": MappingProxyType(
            {
                "hidden": (128, 128),
                "activation": "silu",
                "zero_init": False,
                "out_bias": 0.0,
                "time_dim": 64,
            }
        ),
        "transformer": MappingProxyType(
            {"width": 128, "depth": 4, "heads": 4, "dropout": 0.0, "causal": False}
        ),
        "pis": MappingProxyType(
            {"hidden": 64, "harmonics": 64, "layers": 2, "zero_init": False, "out_bias": 0.0}
        ),
        "unet": MappingProxyType(
            {
                "channels": 64,
                "mults": (1, 2),
                "blocks": 1,
                "attention": (),
                "heads": 4,
                "groups": 8,
                "dropout": 0.0,
            }
        ),
    }
)
"""Valid architecture names mapped to their options and default values (read-only)."""


class NetConfigError(Exception):
    """A ``net`` declaration names an unknown architecture or gives invalid options.

    :param message: what is wrong; an option it concerns is quoted (``option 'hidden' …``), which
        the checker uses to point at that option in the source.
    :param hint: optional suggestion for fixing it (e.g. "did you mean 'mlp'?").
    """

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message if hint is None else f"{message} ({hint})")
        self.message = message
        self.hint = hint


def _unknown(message: str, word: str, choices: Sequence[str], what: str) -> NetConfigError:
    close = did_you_mean(word, choices, n=1)
    hint = (f"{close} " if close else "") + f"valid {what}: {', '.join(choices)}"
    return NetConfigError(message, hint)


def _int(name: str, value: Any, minimum: int = 1) -> int:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value != int(value) or int(value) < minimum:
        raise NetConfigError(f"option '{name}' must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise NetConfigError(f"option '{name}' must be true or false, got {value!r}")
    return value


def describe_spaces(spaces: Sequence[Space]) -> str:
    """Spaces as a message shows them: ``real[2], time``."""
    return ", ".join(f"{s.kind}{list(s.shape) if s.shape else ''}" for s in spaces)


def _check_space(space: Space, role: str) -> None:
    if any(n < 1 for n in space.shape):
        raise NetConfigError(f"{role} has invalid shape {space.shape!r}")
    if space.kind == SpaceKind.TIME and space.shape:
        raise NetConfigError(f"{role}: time must be a scalar, got shape {space.shape!r}")
    if space.kind == SpaceKind.TOKEN and (not isinstance(space.vocab, int) or space.vocab < 1):
        raise NetConfigError(f"{role}: token needs a positive vocabulary size, got {space.vocab!r}")


def _mlp_options(cfg: dict[str, Any]) -> None:
    hidden = cfg["hidden"]
    numbers = isinstance(hidden, list | tuple) and all(
        isinstance(h, int | float) and not isinstance(h, bool) for h in hidden
    )
    if not numbers:
        raise NetConfigError(
            f"option 'hidden' must be a list of positive integers, got {hidden!r}",
            "e.g. hidden = [128, 128]",
        )
    cfg["hidden"] = [_int("hidden", h) for h in hidden]
    activation = cfg["activation"]
    if not isinstance(activation, str) or activation not in ACTIVATIONS:
        word = str(activation)
        raise _unknown(f"unknown activation {word!r}", word, ACTIVATIONS, "activations")
    _zero_init_options(cfg)
    cfg["time_dim"] = _int("time_dim", cfg["time_dim"], 2)


def _zero_init_options(cfg: dict[str, Any]) -> None:
    _bool("zero_init", cfg["zero_init"])
    bias = cfg["out_bias"]
    if not isinstance(bias, int | float) or isinstance(bias, bool) or not math.isfinite(bias):
        raise NetConfigError(f"option 'out_bias' must be a finite number, got {bias!r}")
    cfg["out_bias"] = float(bias)


def _pis_options(cfg: dict[str, Any], inputs: tuple[Space, ...]) -> None:
    for key in ("hidden", "harmonics", "layers"):
        cfg[key] = _int(key, cfg[key])
    _zero_init_options(cfg)
    kinds = [s.kind for s in inputs]
    if kinds.count(SpaceKind.TIME) != 1 or SpaceKind.TOKEN in kinds:
        raise NetConfigError(
            f"pis takes real inputs and exactly one time; got {describe_spaces(inputs)}",
            "use mlp otherwise",
        )


def _transformer_options(cfg: dict[str, Any], inputs: tuple[Space, ...], output: Space) -> None:
    for key in ("width", "depth", "heads"):
        cfg[key] = _int(key, cfg[key])
    if cfg["width"] % cfg["heads"]:
        raise NetConfigError(f"width {cfg['width']} is not divisible by heads {cfg['heads']}")
    _bool("causal", cfg["causal"])
    drop = cfg["dropout"]
    if isinstance(drop, bool) or not isinstance(drop, int | float) or not 0 <= drop < 1:
        raise NetConfigError(f"option 'dropout' must be a number in [0, 1), got {drop!r}")
    seq = [s for s in inputs if s.kind != SpaceKind.TIME]
    if not seq:
        raise NetConfigError("transformer needs a token(V)[L] or real[L] sequence input")
    length = seq[0].shape[0] if seq[0].shape else None
    for s in seq:
        ok = s.shape[:1] == (length,) and len(s.shape) <= (1 if s.kind == SpaceKind.TOKEN else 2)
        if length is None or not ok:
            raise NetConfigError(
                f"transformer inputs must be token(V)[L], real[L] or real[L, k] "
                f"with one common L; got {s.kind}{list(s.shape)}"
            )
    if output.shape[:1] != (length,) or len(output.shape) > 2:
        raise NetConfigError(
            f"transformer output must be real[{length}] or real[{length}, F], "
            f"got real{list(output.shape)}"
        )


def _int_list(name: str, value: Any, minimum: int) -> list[int]:
    if not isinstance(value, list | tuple):
        raise NetConfigError(f"option '{name}' must be a list of integers, got {value!r}")
    return [_int(name, v, minimum) for v in value]


def _unet_options(cfg: dict[str, Any], inputs: tuple[Space, ...], output: Space) -> None:
    for key in ("channels", "blocks", "heads", "groups"):
        cfg[key] = _int(key, cfg[key])
    cfg["mults"] = _int_list("mults", cfg["mults"], 1)
    if not cfg["mults"]:
        raise NetConfigError("option 'mults' must list at least one level, e.g. mults = [1, 2]")
    cfg["attention"] = _int_list("attention", cfg["attention"], 0)
    levels = len(cfg["mults"])
    for level in cfg["attention"]:
        if level >= levels:
            raise NetConfigError(
                f"option 'attention' names level {level}, but mults gives levels 0 … {levels - 1}"
            )
    drop = cfg["dropout"]
    if isinstance(drop, bool) or not isinstance(drop, int | float) or not 0 <= drop < 1:
        raise NetConfigError(f"option 'dropout' must be a number in [0, 1), got {drop!r}")
    if cfg["channels"] % cfg["groups"]:
        raise NetConfigError(
            f"option 'channels' ({cfg['channels']}) must be divisible by groups ({cfg['groups']})"
        )
    widths = [cfg["channels"] * m for m in cfg["mults"]]
    for level in sorted({*cfg["attention"], levels - 1}):  # the middle attends at the last level
        if widths[level] % cfg["heads"]:
            raise NetConfigError(
                f"option 'heads' ({cfg['heads']}) must divide the {widths[level]} channels of "
                f"level {level} (channels × mults[{level}])"
            )
    images = [s for s in inputs if s.kind != SpaceKind.TIME]
    if len(images) != 1 or images[0].kind != SpaceKind.REAL or len(images[0].shape) != 3:
        shown = ", ".join(f"{s.kind}{list(s.shape)}" for s in images) or "none"
        raise NetConfigError(
            f"unet takes one image real[C, H, W] (and optionally time); got {shown}"
        )
    _, height, width = images[0].shape
    factor = 2 ** (levels - 1)
    if height % factor or width % factor:
        raise NetConfigError(
            f"option 'mults' gives {levels} levels, so the image's height and width must be "
            f"divisible by 2^{levels - 1} = {factor}; got {height} × {width}",
            "use fewer levels, or pad the image",
        )
    if len(output.shape) != 3 or output.shape[1:] != (height, width):
        raise NetConfigError(
            f"unet output must be real[C', {height}, {width}], got real{list(output.shape)}"
        )


def resolve_options(
    arch: str, options: Mapping[str, Any], inputs: Sequence[Space], output: Space
) -> dict[str, Any]:
    """Validate a net declaration and fill in the default options.

    :param arch: the architecture's name.
    :param options: the declaration's keyword options.
    :param inputs: the input spaces, in order.
    :param output: the output space (must be real).
    :raises NetConfigError: unknown architecture or option, bad values or spaces.
    :returns: every option of ``arch``, validated (lists of sizes as lists of ints).
    """
    if arch in registered_nets():  # the user's factory: its options are its own
        return dict(options)
    if arch not in ARCHITECTURES:
        names = [*ARCHITECTURES, *registered_nets()]
        raise _unknown(f"unknown net architecture '{arch}'", arch, names, "architectures")
    valid = ARCHITECTURES[arch]
    for key in options:
        if key not in valid:
            raise _unknown(f"unknown option '{key}' for {arch}", str(key), list(valid), "options")
    cfg = {**valid, **options}
    inputs = tuple(inputs)
    for i, space in enumerate(inputs):
        _check_space(space, f"input {i + 1}")
    _check_space(output, "output")
    if output.kind != SpaceKind.REAL:
        raise NetConfigError(f"net output must be real, got {output.kind}")
    if not inputs:
        raise NetConfigError("a net needs at least one input")
    if arch == "mlp":
        _mlp_options(cfg)
    elif arch == "pis":
        _pis_options(cfg, inputs)
    elif arch == "unet":
        _unet_options(cfg, inputs, output)
    else:
        _transformer_options(cfg, inputs, output)
    return cfg


def mlp_in_features(inputs: Sequence[Space], time_dim: int) -> int:
    """The width of an ``mlp``'s first layer: reals flattened, tokens one-hot over ``V + 1``
    values (``[MASK]`` included), times embedded in ``time_dim`` features.

    :returns: the number of input features.
    """
    total = 0
    for space in inputs:
        if space.kind == SpaceKind.TIME:
            total += time_dim
        elif space.kind == SpaceKind.TOKEN:
            total += space.size * (space.vocab + 1)
        else:
            total += space.size
    return total


def count_parameters(
    arch: str, options: Mapping[str, Any], inputs: Sequence[Space], output: Space
) -> int:
    """Number of parameters :func:`~dtg.nets.build_net` would create, computed without torch.

    :param arch: the architecture's name.
    :param options: the declaration's keyword options.
    :param inputs: the input spaces, in order.
    :param output: the output space.
    :raises NetConfigError: if the configuration is invalid.
    :returns: the parameter count.
    """
    inputs = tuple(inputs)
    cfg = resolve_options(arch, options, inputs, output)
    if arch in registered_nets():
        return 0  # unknown before the factory runs; the build counts and limits it
    if arch == "mlp":
        sizes = [mlp_in_features(inputs, cfg["time_dim"]), *cfg["hidden"], output.size]
        return sum(a * b + b for a, b in zip(sizes, sizes[1:], strict=False))
    if arch == "unet":
        return _unet_parameters(cfg, inputs, output)
    if arch == "pis":
        w, harmonics = cfg["hidden"], cfg["harmonics"]
        state = sum(s.size for s in inputs if s.kind == SpaceKind.REAL)
        time = harmonics + 2 * harmonics * w + w + w * w + w  # phases, two-layer time MLP
        joint = cfg["layers"] * (w * w + w) + w * output.size + output.size
        return time + (state * w + w if state else 0) + joint
    w, ff = cfg["width"], 4 * cfg["width"]
    length, feats = output.shape[0], math.prod(output.shape[1:])
    total = length * w + w * feats + feats + 2 * w  # positions, head, final norm
    total += w if cfg["causal"] else 0  # the start vector
    for space in inputs:
        if space.kind == SpaceKind.TOKEN:
            total += (space.vocab + 1) * w  # embedding
        elif space.kind == SpaceKind.REAL:
            total += (math.prod(space.shape[1:]) + 1) * w  # linear
        else:
            total += 2 * (w * w + w)  # time MLP
    layer = 4 * w * w + 4 * w + 2 * w * ff + ff + w + 4 * w  # attention, feed-forward, 2 norms
    return total + cfg["depth"] * layer


def _unet_parameters(cfg: dict[str, Any], inputs: tuple[Space, ...], output: Space) -> int:
    """The parameters of :class:`~dtg.nets.unet.UNet`, layer by layer."""

    def conv(a: int, b: int, k: int = 3) -> int:
        return k * k * a * b + b

    c, blocks = cfg["channels"], cfg["blocks"]
    timed = any(s.kind == SpaceKind.TIME for s in inputs)
    time_dim = 4 * c if timed else 0

    def res(a: int, b: int) -> int:
        return (
            2 * a
            + conv(a, b)
            + (time_dim * b + b if timed else 0)
            + 2 * b
            + conv(b, b)
            + (conv(a, b, 1) if a != b else 0)
        )

    def attention(ch: int) -> int:
        return 2 * ch + conv(ch, 3 * ch, 1) + conv(ch, ch, 1)

    image = next(s for s in inputs if s.kind == SpaceKind.REAL)
    total = conv(image.shape[0], c) + ((c * time_dim + time_dim) + (time_dim**2 + time_dim))
    widths = [c * m for m in cfg["mults"]]
    last, previous = len(widths) - 1, c
    for level, width in enumerate(widths):  # down
        for _ in range(blocks):
            total += res(previous, width) + (attention(width) if level in cfg["attention"] else 0)
            previous = width
        total += conv(width, width) if level < last else 0
    total += 2 * res(previous, previous) + attention(previous)  # middle
    for level in reversed(range(len(widths))):  # up
        total += conv(previous, previous) if level < last else 0
        for block in range(blocks):
            entering = previous + widths[level] if block == 0 else widths[level]
            total += res(entering, widths[level])
            total += attention(widths[level]) if level in cfg["attention"] else 0
            previous = widths[level]
    return total + 2 * previous + conv(previous, output.shape[0])


def check_inputs(inputs: Sequence[Space], args: Sequence[Any]) -> None:
    """Check the tensors a built net is called with against its input spaces.

    :param inputs: the declared input spaces.
    :param args: the tensors, each ``[B, *space.shape]``.
    :raises TypeError: for the wrong number of inputs.
    :raises ValueError: for a wrong shape (the message names the input).
    """
    if len(args) != len(inputs):
        raise TypeError(f"net expects {plural(len(inputs), 'input')}, got {len(args)}")
    for i, (space, x) in enumerate(zip(inputs, args, strict=True)):
        if x.dim() != 1 + len(space.shape) or tuple(x.shape[1:]) != space.shape:
            raise ValueError(
                f"net input {i + 1} ({space.kind}) must have shape "
                f"[B, {', '.join(map(str, space.shape))}], got {list(x.shape)}"
            )

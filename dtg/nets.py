"""Neural-network architectures that a ``.dtg`` file can name in a ``net`` declaration.

A declaration such as ``net eps : (real[2], time) -> real[2] = mlp(hidden = [128, 128])``
is turned into a module by :func:`build_net`.  The module's ``forward(*args)`` takes one tensor
per declared input, in order, each with exactly one leading batch dimension ``B``:

* ``real[*S]``   -> float tensor ``[B, *S]`` (a scalar ``real`` is ``[B]``);
* ``token(V)[*S]`` -> long tensor ``[B, *S]`` with values ``0..V``; id ``V`` is ``[MASK]``;
* ``time``       -> float tensor ``[B]``.  Callers should pass ``t / T`` in ``[0, 1]``; the value
  is multiplied by :data:`TIME_SCALE` internally (as in improved-diffusion), but any float works.

and returns a float tensor ``[B, *output.shape]``.  Nothing here is tied to a device: move a
built net with ``.to(device)``; inputs are cast to the net's parameter dtype.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "ARCHITECTURES",
    "MAX_PARAMETERS",
    "TIME_SCALE",
    "NetConfigError",
    "Signature",
    "build_net",
    "count_parameters",
    "sinusoidal_embedding",
]

MAX_PARAMETERS = 200_000_000
"""Nets whose estimated parameter count exceeds this are refused before allocation."""
TIME_SCALE = 1000.0
"""Times are multiplied by this before the sinusoidal embedding (t in [0, 1] -> [0, 1000])."""

_ACTIVATIONS = {"silu": nn.SiLU, "relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}
ARCHITECTURES: dict[str, dict[str, Any]] = {
    "mlp": {"hidden": [128, 128], "activation": "silu", "zero_init": False, "time_dim": 64},
    "transformer": {"width": 128, "depth": 4, "heads": 4, "dropout": 0.0, "causal": False},
}
"""Valid architecture names mapped to their options and default values."""


class NetConfigError(Exception):
    """A ``net`` declaration names an unknown architecture or gives invalid options.

    :param message: what is wrong.
    :param hint: optional suggestion for fixing it (e.g. "did you mean 'mlp'?").
    """

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message if hint is None else f"{message} ({hint})")
        self.message = message
        self.hint = hint


@dataclass(frozen=True)
class Signature:
    """Type of one net input or output.

    :param kind: ``"real"``, ``"token"`` or ``"time"``.
    :param shape: per-example shape, ``()`` for time and scalars, e.g. ``(2,)`` or ``(64, 17)``.
    :param vocab: for tokens, the number of values ``V`` (id ``V`` itself means ``[MASK]``).
    """

    kind: str
    shape: tuple[int, ...] = ()
    vocab: int | None = None


def sinusoidal_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal timestep embedding (improved-diffusion's ``timestep_embedding``).

    :param t: times of shape ``[B]``; multiplied by :data:`TIME_SCALE` first.
    :param dim: embedding size; ``[cos | sin]`` halves, zero-padded by one column if odd.
    :param max_period: the lowest frequency is ``1 / max_period``.
    :returns: tensor ``[B, dim]`` on ``t``'s device with ``t``'s (floating) dtype.
    """
    t = t if t.is_floating_point() else t.float()
    half = dim // 2
    k = torch.arange(half, device=t.device, dtype=t.dtype)
    freqs = torch.exp(-math.log(max_period) * k / half)
    args = (t * TIME_SCALE)[:, None] * freqs[None, :]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    return F.pad(emb, (0, 1)) if dim % 2 else emb


# ---------------------------------------------------------------- validation


def _fail(message: str, word: str, choices: list[str], what: str) -> NetConfigError:
    close = difflib.get_close_matches(word, choices, n=1)
    hint = (f"did you mean '{close[0]}'? " if close else "") + f"valid {what}: {', '.join(choices)}"
    return NetConfigError(message, hint)


def _int(name: str, value: Any, minimum: int = 1) -> int:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value != int(value) or int(value) < minimum:
        raise NetConfigError(f"option '{name}' must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_signature(sig: Signature, role: str) -> None:
    if sig.kind not in ("real", "token", "time"):
        raise NetConfigError(f"{role} has unknown kind {sig.kind!r}", "use real, token or time")
    if any(not isinstance(n, int) or n < 1 for n in sig.shape):
        raise NetConfigError(f"{role} has invalid shape {sig.shape!r}")
    if sig.kind == "time" and sig.shape:
        raise NetConfigError(f"{role}: time must be a scalar, got shape {sig.shape!r}")
    if sig.kind == "token" and (not isinstance(sig.vocab, int) or sig.vocab < 1):
        raise NetConfigError(f"{role}: token needs a positive vocabulary size, got {sig.vocab!r}")


def _resolve(
    arch: str, options: dict, inputs: tuple[Signature, ...], output: Signature
) -> dict[str, Any]:
    """Validate everything and return the options with defaults filled in."""
    if arch not in ARCHITECTURES:
        raise _fail(
            f"unknown net architecture '{arch}'", arch, list(ARCHITECTURES), "architectures"
        )
    valid = ARCHITECTURES[arch]
    for key in options:
        if key not in valid:
            raise _fail(f"unknown option '{key}' for {arch}", str(key), list(valid), "options")
    cfg = {**valid, **options}
    for i, sig in enumerate(inputs):
        _check_signature(sig, f"input {i + 1}")
    _check_signature(output, "output")
    if output.kind != "real":
        raise NetConfigError(f"net output must be real, got {output.kind}")
    if not inputs:
        raise NetConfigError("a net needs at least one input")
    if arch == "mlp":
        hidden = cfg["hidden"]
        if not isinstance(hidden, list | tuple):
            raise NetConfigError(
                f"option 'hidden' must be a list of positive integers, got {hidden!r}",
                "e.g. hidden = [128, 128]",
            )
        if not all(isinstance(h, int | float) and not isinstance(h, bool) for h in hidden):
            raise NetConfigError(
                f"option 'hidden' must be a list of positive integers, got {hidden!r}",
                "e.g. hidden = [128, 128]",
            )
        cfg["hidden"] = [_int("hidden", h) for h in hidden]
        if not isinstance(cfg["activation"], str) or cfg["activation"] not in _ACTIVATIONS:
            act = str(cfg["activation"])
            raise _fail(f"unknown activation {act!r}", act, list(_ACTIVATIONS), "activations")
        if not isinstance(cfg["zero_init"], bool):
            raise NetConfigError(
                f"option 'zero_init' must be true or false, got {cfg['zero_init']!r}"
            )
        cfg["time_dim"] = _int("time_dim", cfg["time_dim"], 2)
        return cfg
    for key in ("width", "depth", "heads"):
        cfg[key] = _int(key, cfg[key])
    if cfg["width"] % cfg["heads"]:
        raise NetConfigError(f"width {cfg['width']} is not divisible by heads {cfg['heads']}")
    if not isinstance(cfg["causal"], bool):
        raise NetConfigError(f"option 'causal' must be true or false, got {cfg['causal']!r}")
    drop = cfg["dropout"]
    if isinstance(drop, bool) or not isinstance(drop, int | float) or not 0 <= drop < 1:
        raise NetConfigError(f"option 'dropout' must be a number in [0, 1), got {drop!r}")
    seq = [s for s in inputs if s.kind != "time"]
    if not seq:
        raise NetConfigError("transformer needs a token(V)[L] or real[L] sequence input")
    length = seq[0].shape[0] if seq[0].shape else None
    for s in seq:
        ok = s.shape[:1] == (length,) and len(s.shape) <= (1 if s.kind == "token" else 2)
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
    return cfg


def _mlp_in_features(inputs: tuple[Signature, ...], time_dim: int) -> int:
    sizes = {
        "real": lambda s: math.prod(s.shape),
        "time": lambda s: time_dim,
        "token": lambda s: math.prod(s.shape) * (s.vocab + 1),
    }
    return sum(sizes[s.kind](s) for s in inputs)


def count_parameters(
    arch: str, options: dict, inputs: tuple[Signature, ...], output: Signature
) -> int:
    """Number of parameters :func:`build_net` would create, computed without allocating.

    :raises NetConfigError: if the configuration is invalid.
    :returns: the parameter count.
    """
    cfg = _resolve(arch, options, inputs, output)
    if arch == "mlp":
        sizes = [_mlp_in_features(inputs, cfg["time_dim"]), *cfg["hidden"], math.prod(output.shape)]
        return sum(a * b + b for a, b in zip(sizes, sizes[1:], strict=False))
    w, ff = cfg["width"], 4 * cfg["width"]
    length, feats = output.shape[0], math.prod(output.shape[1:])
    total = length * w + w * feats + feats + 2 * w  # positions, head, final norm
    total += w if cfg["causal"] else 0  # the start vector
    for s in inputs:
        if s.kind == "token":
            total += (s.vocab + 1) * w
        elif s.kind == "real":
            total += (math.prod(s.shape[1:]) + 1) * w
        else:
            total += 2 * (w * w + w)
    layer = 4 * w * w + 4 * w + 2 * w * ff + ff + w + 4 * w  # attention, feed-forward, 2 norms
    return total + cfg["depth"] * layer


# ---------------------------------------------------------------- modules


class _MLP(nn.Module):
    """Flatten/one-hot/embed all inputs, concatenate, then ``Linear -> act`` layers."""

    def __init__(self, cfg: dict, inputs: tuple[Signature, ...], output: Signature) -> None:
        super().__init__()
        self.inputs, self.out_shape, self.time_dim = inputs, output.shape, cfg["time_dim"]
        sizes = [_mlp_in_features(inputs, self.time_dim), *cfg["hidden"]]
        layers: list[nn.Module] = []
        for a, b in zip(sizes, sizes[1:], strict=False):
            layers += [nn.Linear(a, b), _ACTIVATIONS[cfg["activation"]]()]
        last = nn.Linear(sizes[-1], math.prod(output.shape))
        if cfg["zero_init"]:
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
        self.body = nn.Sequential(*layers, last)

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        """:returns: ``[B, *output.shape]``."""
        dtype = self.body[-1].weight.dtype
        feats = []
        for sig, x in zip(self.inputs, _check_args(self.inputs, args), strict=True):
            if sig.kind == "time":
                feats.append(sinusoidal_embedding(x.to(dtype), self.time_dim))
            elif sig.kind == "token":
                feats.append(F.one_hot(x.long(), sig.vocab + 1).to(dtype).flatten(1))
            else:
                feats.append(x.to(dtype).reshape(x.shape[0], -1))
        y = self.body(torch.cat(feats, dim=-1))
        return y.reshape(y.shape[0], *self.out_shape)


class _Transformer(nn.Module):
    """Pre-norm transformer encoder over a length-``L`` sequence -> ``[B, L]`` or ``[B, L, F]``.

    With ``causal = true`` the output at position ``i`` depends on the sequence inputs at
    positions ``< i`` only (and on the time): the inputs are shifted right by one behind a
    learned start vector and attention is masked to ``j ≤ i``, as in a GPT decoder. Such a net
    scores every position of an autoregressive (``MashLast``) model in one pass.
    """

    def __init__(self, cfg: dict, inputs: tuple[Signature, ...], output: Signature) -> None:
        super().__init__()
        w = cfg["width"]
        self.inputs, self.out_shape, self.width = inputs, output.shape, w
        self.causal = bool(cfg["causal"])
        length = output.shape[0]
        if self.causal:
            self.begin = nn.Parameter(torch.randn(w) * 0.02)
            # True above the diagonal = position i may not attend to j > i.
            above = torch.ones(length, length, dtype=torch.bool).triu(1)
            self.register_buffer("attend_mask", above, persistent=False)
        self.embeds = nn.ModuleList()
        for s in inputs:
            if s.kind == "token":
                self.embeds.append(nn.Embedding(s.vocab + 1, w))
            elif s.kind == "real":
                self.embeds.append(nn.Linear(math.prod(s.shape[1:]), w))
            else:
                self.embeds.append(nn.Sequential(nn.Linear(w, w), nn.SiLU(), nn.Linear(w, w)))
        self.pos = nn.Parameter(torch.randn(output.shape[0], w) * 0.02)
        layer = nn.TransformerEncoderLayer(
            w,
            cfg["heads"],
            4 * w,
            float(cfg["dropout"]),
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, cfg["depth"], enable_nested_tensor=False)
        self.norm = nn.LayerNorm(w)
        self.head = nn.Linear(w, math.prod(output.shape[1:]))

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        """:returns: ``[B, *output.shape]``."""
        dtype = self.pos.dtype
        seq, timed = 0.0, 0.0
        for sig, emb, x in zip(
            self.inputs, self.embeds, _check_args(self.inputs, args), strict=True
        ):
            if sig.kind == "token":
                seq = seq + emb(x.long())
            elif sig.kind == "real":
                seq = seq + emb(x.to(dtype).reshape(*x.shape[:2], -1))
            else:
                timed = timed + emb(sinusoidal_embedding(x.to(dtype), self.width))[:, None, :]
        if self.causal:  # position i reads the inputs at i - 1 (the start vector at 0)
            begin = self.begin.expand(seq.shape[0], 1, -1)
            seq = torch.cat([begin, seq[:, :-1]], dim=1)
            h = self.encoder(self.pos[None] + seq + timed, mask=self.attend_mask, is_causal=True)
        else:
            h = self.encoder(self.pos[None] + seq + timed)
        y = self.head(self.norm(h))
        return y.reshape(y.shape[0], *self.out_shape)


def _check_args(inputs: tuple[Signature, ...], args: tuple[torch.Tensor, ...]) -> tuple:
    if len(args) != len(inputs):
        raise TypeError(f"net expects {len(inputs)} inputs, got {len(args)}")
    for i, (sig, x) in enumerate(zip(inputs, args, strict=True)):
        if x.dim() != 1 + len(sig.shape) or tuple(x.shape[1:]) != sig.shape:
            raise ValueError(
                f"net input {i + 1} ({sig.kind}) must have shape "
                f"[B, {', '.join(map(str, sig.shape))}], got {list(x.shape)}"
            )
    return args


def build_net(
    arch: str, options: dict, inputs: tuple[Signature, ...], output: Signature
) -> nn.Module:
    """Build the net a ``.dtg`` declaration names.

    :param arch: architecture name, one of :data:`ARCHITECTURES`.
    :param options: keyword options from the declaration (missing ones take defaults).
    :param inputs: input signatures; ``forward`` takes one ``[B, *shape]`` tensor per input.
    :param output: output signature (must be ``real``).
    :raises NetConfigError: unknown architecture/option, bad values, or more than
        :data:`MAX_PARAMETERS` parameters (checked before allocating anything).
    :returns: a module mapping the inputs to a ``[B, *output.shape]`` float tensor.
    """
    inputs = tuple(inputs)
    n = count_parameters(arch, options, inputs, output)
    if n > MAX_PARAMETERS:
        raise NetConfigError(
            f"net {arch} would have {n:,} parameters, more than the limit of {MAX_PARAMETERS:,}",
            "use smaller sizes",
        )
    cfg = _resolve(arch, options, inputs, output)
    return (_MLP if arch == "mlp" else _Transformer)(cfg, inputs, output)

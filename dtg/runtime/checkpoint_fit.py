"""Whether a checkpoint (already checked by :mod:`dtg.runtime.checkpoint_schema`) fits the
compiled model it is restored into: the weights' names, shapes and dtypes; the tables the program
compiles to; the EMA weights; the optimizer's groups and per-parameter state.

Each check raises :class:`~dtg.runtime.checkpoint_schema.SchemaError` naming the field (or, for
weights that do not fit, returns the list of differences), before anything is copied into the
model, so that a refused checkpoint leaves the model as it was.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .checkpoint_values import SchemaError, describe, must

__all__ = [
    "TRAINING_BUFFERS",
    "weight_differences",
    "check_tables",
    "check_ema",
    "check_optimizer",
]

#: The buffers (by their last name) that training changes: kept in a checkpoint as state. Every
#: other buffer is a table the program compiles to (a schedule, a marginal, a loss weight), and
#: a checkpoint's copy must equal the model's.
TRAINING_BUFFERS = frozenset(
    {"history", "history_count", "log_z_started", "step", "replay_x", "replay_count"}
)
#: A table may differ from the model's by float32 rounding (another platform, another version).
_RTOL, _ATOL = 1e-5, 1e-6


def weight_differences(model: nn.Module, state: dict[str, torch.Tensor]) -> list[str]:
    """The ways ``state`` does not fit ``model.state_dict()``: missing or extra names, shapes,
    dtypes.

    :returns: one line per difference (empty when it fits).
    """
    own = model.state_dict()
    lines = [
        f"missing from the checkpoint: {k} {tuple(own[k].shape)}" for k in own if k not in state
    ]
    lines += [f"not in this model: {k} {tuple(state[k].shape)}" for k in state if k not in own]
    for key, value in own.items():
        if key not in state:
            continue
        if tuple(value.shape) != tuple(state[key].shape):
            lines.append(
                f"shape of {key}: checkpoint {tuple(state[key].shape)}, model {tuple(value.shape)}"
            )
        elif value.dtype != state[key].dtype:
            lines.append(f"dtype of {key}: checkpoint {state[key].dtype}, model {value.dtype}")
    return lines


def check_tables(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """The program's tables in ``state`` equal the model's; training counters are ≥ 0.

    :param state: a state dict that fits ``model`` (see :func:`weight_differences`).
    :raises SchemaError: naming the first table that differs or counter that is negative.
    """
    params = {name for name, _ in model.named_parameters()}
    own = model.state_dict()
    for key, value in own.items():
        if key in params:
            continue
        saved = state[key].to(value.device)
        if key.rpartition(".")[2] in TRAINING_BUFFERS:
            if (
                not saved.is_floating_point()
                and saved.dtype != torch.bool
                and bool((saved < 0).any())
            ):
                raise SchemaError(f"model[{key!r}]", "holds a negative count")
            continue
        if value.is_floating_point():
            same = torch.allclose(saved, value, rtol=_RTOL, atol=_ATOL)
        else:
            same = torch.equal(saved, value)
        if not same:
            raise SchemaError(
                f"model[{key!r}]",
                "differs from the table this program compiles to (was the program changed, or "
                "the checkpoint edited?)",
            )


def check_ema(model: nn.Module, ema: dict[str, torch.Tensor], every: bool) -> None:
    """The EMA weights average trainable parameters of ``model``, with their shapes and dtypes.

    :param every: also require an average for every trainable parameter (resuming).
    :raises SchemaError: naming the first EMA weight that does not fit.
    """
    params = dict(model.named_parameters())
    for key, value in ema.items():
        param = params.get(key)
        if param is None or not param.requires_grad:
            raise SchemaError(f"ema[{key!r}]", "names no trainable parameter of this model")
        if value.shape != param.shape or value.dtype != param.dtype:
            raise must(f"ema[{key!r}]", f"like the parameter ({describe(param.data)})", value)
    if every:
        for key, param in params.items():
            if param.requires_grad and key not in ema:
                raise SchemaError(f"ema[{key!r}]", "is missing")


def check_optimizer(optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """``state`` (an Adam state dict) fits ``optimizer``: the same groups of the same numbered
    parameters, the same hyper-parameters (the learning rate is set at every step), and moments
    of each parameter's shape and dtype.

    :raises SchemaError: naming the first entry that does not fit.
    """
    fresh = optimizer.state_dict()["param_groups"]
    saved = state["param_groups"]
    if len(saved) != len(fresh):
        raise SchemaError(
            "optimizer.param_groups",
            f"has {len(saved)} group{'s' if len(saved) != 1 else ''}, this model's optimizer "
            f"{len(fresh)}",
        )
    for g, (mine, theirs) in enumerate(zip(fresh, saved, strict=True)):
        where = f"optimizer.param_groups[{g}]"
        if theirs["params"] != mine["params"]:
            raise must(f"{where}.params", f"parameters {_span(mine['params'])}", theirs["params"])
        for key, value in theirs.items():
            if key in ("params", "lr"):
                continue
            if key not in mine:
                raise SchemaError(f"{where}.{key}", "is unknown to this optimizer")
            if not _same(value, mine[key]):
                raise must(f"{where}.{key}", repr(mine[key]), value)
        if "lr" not in theirs:
            raise SchemaError(f"{where}.lr", "is missing")
    params = [p for group in optimizer.param_groups for p in group["params"]]
    amsgrad = bool(optimizer.param_groups[0].get("amsgrad"))
    for index, entry in state["state"].items():
        param = params[index]
        where = f"optimizer.state[{index}]"
        if ("max_exp_avg_sq" in entry) != amsgrad:
            raise SchemaError(f"{where}.max_exp_avg_sq", "does not fit the optimizer's amsgrad")
        for key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
            value = entry.get(key)
            if value is not None and (value.shape != param.shape or value.dtype != param.dtype):
                raise must(f"{where}.{key}", f"like its parameter ({describe(param.data)})", value)


def _span(numbers: list[int]) -> str:
    return f"{numbers[0]}-{numbers[-1]}" if len(numbers) > 1 else str(numbers[0])


def _same(value: Any, expected: Any) -> bool:
    """Equal as the optimizer reads them (a tuple saved as a list, an int as a float)."""
    if isinstance(expected, (list, tuple)):
        return (
            isinstance(value, (list, tuple))
            and len(value) == len(expected)
            and all(_same(v, e) for v, e in zip(value, expected, strict=True))
        )
    if isinstance(expected, bool) or expected is None:
        return value is expected
    return not isinstance(value, bool) and isinstance(value, (int, float)) and value == expected

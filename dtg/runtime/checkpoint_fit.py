"""Whether a checkpoint (already checked by :mod:`dtg.runtime.checkpoint_schema`) fits the
compiled model it is restored into: the weights' names, shapes and dtypes; the training counters;
the EMA weights; the optimizer's groups and per-parameter state. The tables the program compiles
to (schedules, marginals, loss weights) are the program's: a checkpoint does not hold them
(:func:`saved_state`) and restoring one keeps the model's (:func:`restored_state`).

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
    "is_program_table",
    "saved_state",
    "restored_state",
    "weight_differences",
    "check_counters",
    "check_ema",
    "check_optimizer",
]

#: The buffers (by their last name) that training changes: kept in a checkpoint as state. Every
#: other buffer is a table the program compiles to (a schedule, a marginal, a loss weight): it is
#: derived from the program, so a checkpoint neither holds nor restores it.
TRAINING_BUFFERS = frozenset(
    {
        "history",
        "history_count",
        "log_z_started",
        "step",
        "replay_x",
        "replay_count",
        "rank_x",
        "rank_log_r",
        "rank_count",
    }
)


def is_program_table(model: nn.Module, key: str) -> bool:
    """Whether ``key`` of ``model.state_dict()`` is a table the program compiles to.

    :returns: true for a buffer that is not training state (:data:`TRAINING_BUFFERS`).
    """
    return key not in _parameters(model) and key.rpartition(".")[2] not in TRAINING_BUFFERS


def _parameters(model: nn.Module) -> set[str]:
    return {name for name, _ in model.named_parameters()}


def saved_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """What a checkpoint holds of ``model``: its ``state_dict`` without the program's tables
    (the weights and the training state kept in buffers).

    :returns: a new dict (tensors shared with the model).
    """
    params = _parameters(model)
    return {
        key: value
        for key, value in model.state_dict().items()
        if key in params or key.rpartition(".")[2] in TRAINING_BUFFERS
    }


def restored_state(model: nn.Module, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The full ``state_dict`` to load into ``model``: ``state``'s weights and training state,
    and the model's own tables (a table in ``state``, from a file written before tables were
    left out, is ignored: the program, not the checkpoint, defines it).

    :param state: a checkpoint's ``model`` field that fits (see :func:`weight_differences`).
    """
    params = _parameters(model)
    return {
        key: state[key] if key in params or key.rpartition(".")[2] in TRAINING_BUFFERS else value
        for key, value in model.state_dict().items()
    }


def weight_differences(model: nn.Module, state: dict[str, torch.Tensor]) -> list[str]:
    """The ways ``state`` does not fit ``model``: missing or extra names, shapes, dtypes of the
    weights and training state (the program's tables are not compared: they are not restored).

    :returns: one line per difference (empty when it fits).
    """
    every = model.state_dict()
    own = saved_state(model)
    lines = [
        f"missing from the checkpoint: {k} {tuple(own[k].shape)}" for k in own if k not in state
    ]
    lines += [f"not in this model: {k} {tuple(state[k].shape)}" for k in state if k not in every]
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


def check_counters(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """The training state's counters in ``state`` are ≥ 0.

    :param state: a state dict that fits ``model`` (see :func:`weight_differences`).
    :raises SchemaError: naming the first counter that is negative.
    """
    params = _parameters(model)
    for key, saved in state.items():
        if key in params or key.rpartition(".")[2] not in TRAINING_BUFFERS:
            continue
        if not saved.is_floating_point() and saved.dtype != torch.bool and bool((saved < 0).any()):
            raise SchemaError(f"model[{key!r}]", "holds a negative count")


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

"""The checkpoint's schema: what each field must hold, checked once when a checkpoint is loaded.

:data:`FIELDS` maps every top-level field to its check (a function that raises
:class:`SchemaError` naming the offending field, e.g. ``optimizer.state[3].exp_avg``), the format
version that made it required, and whether it may be ``None``. :func:`check_content` runs them all
and then the checks between fields (the step within the run's ``steps``, the EMA weights beside
the weights they average, the source text beside its sha256); :mod:`dtg.runtime.checkpoint` calls
it from ``load_checkpoint``. What needs the compiled model (names, shapes and dtypes of the
weights, the program's tables, the optimizer's groups) is checked when a checkpoint is restored
into one (:mod:`dtg.runtime.checkpoint_fit`).

Format 2 added ``program_sha256`` (:func:`program_sha256`) and ``program``, the text it hashes
(:func:`program_text`), which says what changed when a model no longer matches its checkpoint; a
version-1 checkpoint is read with both unknown (``None``), and ``program`` may be missing from a
version-2 file written before it was recorded.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from ..ir import ModelIR
from ..ir.dump import dump_ir
from ..ir.options import TRAIN_OPTIONS
from .checkpoint_values import (
    INT64,
    SchemaError,
    describe,
    exact_keys,
    integer,
    mapping,
    must,
    number,
    tensor,
    text,
)
from .train_options import OptionError, coerce_option

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "FIELDS",
    "Field",
    "SchemaError",
    "check_content",
    "check_rng",
    "check_generator_state",
    "program_sha256",
    "program_text",
    "source_sha256",
    "is_sha256",
]

FORMAT = "dtg-checkpoint"
#: 2: ``program_sha256`` recorded, every field required, the schema checked at load.
FORMAT_VERSION = 2
_SHA256 = re.compile(r"[0-9a-f]{64}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")
#: The size of a CUDA generator's state (a 64-bit seed and a 64-bit Philox offset).
_CUDA_STATE_BYTES = 16
_PROGRAMS: dict[int, tuple[ModelIR, str]] = {}


def is_sha256(value: Any) -> bool:
    """:returns: whether ``value`` is a hex sha256 digest (64 lowercase hex digits)."""
    return isinstance(value, str) and _SHA256.fullmatch(value) is not None


def source_sha256(text: str | None) -> str:
    """:returns: the hex sha256 of a program's source text (of ``""`` when there is none)."""
    return hashlib.sha256((text or "").encode("utf-8")).hexdigest()


def program_text(ir: Any) -> str | None:
    """A model's program as its checkpoint records it: its IR dump (``dtg compile --emit ir``)
    without the ``train { }`` options. Comments and layout do not change it; a change to the
    message, a schedule, a kernel, a net, the reward or the objective does.

    :param ir: the model's :class:`~dtg.ir.ModelIR`.
    :returns: the text, or ``None`` for a model without one (a stand-in).
    """
    if not isinstance(ir, ModelIR):
        return None
    known = _PROGRAMS.get(id(ir))
    if known is not None and known[0] is ir:  # a run writes a checkpoint every few steps
        return known[1]
    dump = dump_ir(dataclasses.replace(ir, train={}))
    if len(_PROGRAMS) >= 64:
        _PROGRAMS.clear()
    _PROGRAMS[id(ir)] = (ir, dump)
    return dump


def program_sha256(ir: Any) -> str | None:
    """The identity of a model's program: the sha256 of :func:`program_text`.

    :param ir: the model's :class:`~dtg.ir.ModelIR`.
    :returns: the hex digest, or ``None`` for a model without one (a stand-in).
    """
    dump = program_text(ir)
    return None if dump is None else source_sha256(dump)


# ----------------------------------------------------------------------------- fields
def _format(field: str, value: Any) -> None:
    if value != FORMAT:
        raise must(field, repr(FORMAT), value)


def _version(field: str, value: Any) -> None:
    integer(field, value, 1, FORMAT_VERSION, f"1 or {FORMAT_VERSION}")


def _name(field: str, value: Any) -> None:
    if not isinstance(value, str) or _NAME.fullmatch(value) is None:
        raise must(field, "a model name", value)


def _sha256(field: str, value: Any) -> None:
    if not is_sha256(value):
        raise must(field, "a sha256 (64 hex digits)", value)


def _state_dict(field: str, value: Any) -> None:
    """A state dict: names → dense tensors of a real dtype, finite where floating."""
    if not mapping(field, value, "a dict of named tensors"):
        raise must(field, "a dict of named tensors", value)
    for key, item in value.items():
        if not isinstance(key, str) or not key:
            raise SchemaError(field, f"has a key that is not a name: {describe(key)}")
        tensor(f"{field}[{key!r}]", item)


def _optimizer(field: str, value: Any) -> None:
    """Adam's state dict: ``param_groups`` (numbered parameters, finite hyper-parameters) and
    ``state`` (per numbered parameter: its step and moments)."""
    exact_keys(field, mapping(field, value), {"state", "param_groups"})
    groups = value["param_groups"]
    if not isinstance(groups, list) or not groups:
        raise must(f"{field}.param_groups", "a non-empty list", groups)
    numbered: set[int] = set()
    for g, group in enumerate(groups):
        where = f"{field}.param_groups[{g}]"
        mapping(where, group)
        params = group.get("params")
        if not isinstance(params, list) or not params:
            raise must(f"{where}.params", "a non-empty list of parameter numbers", params)
        for i, index in enumerate(params):
            integer(f"{where}.params[{i}]", index, 0, 2**31)
            if index in numbered:
                raise SchemaError(f"{where}.params[{i}]", f"repeats parameter {index}")
            numbered.add(index)
        for key, item in group.items():
            if not isinstance(key, str):
                raise SchemaError(where, f"has a key that is not a name: {describe(key)}")
            if key == "params" or item is None or isinstance(item, bool):
                continue
            items = item if isinstance(item, (list, tuple)) and item else [item]
            for i, entry in enumerate(items):
                path = f"{where}.{key}" + (f"[{i}]" if items is item else "")
                number(path, entry, 0.0, "a finite non-negative number")
    entries = mapping(f"{field}.state", value["state"])
    for index, entry in entries.items():
        if isinstance(index, bool) or not isinstance(index, int) or index not in numbered:
            raise SchemaError(
                f"{field}.state",
                f"has an entry for parameter {describe(index)}, in no param_groups[…].params",
            )
        where = f"{field}.state[{index}]"
        exact_keys(where, mapping(where, entry), {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"},
              frozenset({"max_exp_avg_sq"}))  # fmt: skip
        step = entry["step"]
        if isinstance(step, torch.Tensor) and step.dtype != torch.bool:
            step = tensor(f"{where}.step", step, shape=()).item()
        if number(f"{where}.step", step, 0.0, "a whole number ≥ 0") != int(step):
            raise must(f"{where}.step", "a whole number ≥ 0", step)
        floats = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
        first = tensor(f"{where}.exp_avg", entry["exp_avg"], floats)
        for key in ("exp_avg_sq", "max_exp_avg_sq"):
            if key in entry:
                moment = tensor(f"{where}.{key}", entry[key], floats, tuple(first.shape))
                if bool((moment < 0).any()):
                    raise SchemaError(f"{where}.{key}", "holds negative values (a second moment)")


def check_rng(field: str, value: Any) -> None:
    """The global random states of :func:`dtg.runtime.checkpoint.capture_rng`."""
    exact_keys(field, mapping(field, value), {"torch", "cuda", "numpy", "python"})
    check_generator_state(f"{field}.torch", value["torch"])
    cuda = value["cuda"]
    if not isinstance(cuda, list):
        raise must(f"{field}.cuda", "a list of CUDA generator states", cuda)
    for i, state in enumerate(cuda):
        tensor(f"{field}.cuda[{i}]", state, {torch.uint8}, (_CUDA_STATE_BYTES,))
    np_state = value["numpy"]
    where = f"{field}.numpy"
    exact_keys(where, mapping(where, np_state), {"kind", "keys", "pos", "has_gauss", "cached"})
    if np_state["kind"] != "MT19937":
        raise must(f"{where}.kind", "'MT19937'", np_state["kind"])
    keys = tensor(f"{where}.keys", np_state["keys"], {torch.int64}, (624,))
    if bool(((keys < 0) | (keys >= 2**32)).any()):
        raise SchemaError(f"{where}.keys", "must hold 32-bit unsigned integers")
    integer(f"{where}.pos", np_state["pos"], 0, 624)
    integer(f"{where}.has_gauss", np_state["has_gauss"], 0, 1)
    number(f"{where}.cached", np_state["cached"])
    python = value["python"]
    where = f"{field}.python"
    if not isinstance(python, (list, tuple)) or len(python) != 3:
        raise must(where, "a list of 3 items (version, state, gauss_next)", python)
    integer(f"{where}[0]", python[0], 3, 3)
    internal = python[1]
    if not isinstance(internal, (list, tuple)) or len(internal) != 625:
        raise must(f"{where}[1]", "a list of 625 integers", internal)
    for i, item in enumerate(internal):
        integer(f"{where}[1][{i}]", item, 0, 2**32 - 1 if i < 624 else 624)
    if python[2] is not None:
        number(f"{where}[2]", python[2], what="None or a finite number")
    try:
        random.Random().setstate((3, tuple(internal), python[2]))
    except (ValueError, TypeError, OverflowError):
        raise SchemaError(where, "is not a valid Python random state") from None


def check_generator_state(field: str, value: Any) -> None:
    """A CPU ``torch.Generator``'s state (what ``get_state`` returns)."""
    size = torch.get_rng_state().numel()
    tensor(field, value, {torch.uint8}, (size,))
    try:
        torch.Generator().set_state(value.cpu())
    except RuntimeError:  # "Invalid mt19937 state"
        raise SchemaError(field, "is not a valid torch generator state") from None


def _train_options(field: str, value: Any) -> None:
    for key, item in mapping(field, value).items():
        if not isinstance(key, str):
            raise SchemaError(field, f"has a key that is not a name: {describe(key)}")
        kind = getattr(TRAIN_OPTIONS.get(key), "kind", None)
        flag = kind == "bool"
        if kind == "choice" and type(item) is not str:  # a mode is kept by its name
            raise must(f"{field}.{key}", "a name", item)
        if flag and not isinstance(item, bool):
            raise must(f"{field}.{key}", "true or false", item)
        numeric = not flag and kind != "choice"
        if numeric and (isinstance(item, bool) or not isinstance(item, (int, float))):
            raise must(f"{field}.{key}", "a number", item)
        if isinstance(item, int) and abs(item) >= INT64:  # coerce_option would take its float
            raise must(f"{field}.{key}", "a whole number below 2^63", item)
        try:
            checked = coerce_option(key, item)
        except OptionError as error:
            raise SchemaError(f"{field}.{key}", f"is refused: {error.message}") from None
        if checked != item or type(checked) is not type(item):
            raise must(f"{field}.{key}", f"{type(checked).__name__} {checked!r}", item)


def _heldout(field: str, value: Any) -> None:
    """The held-out record of a run with ``eval_every`` (:mod:`dtg.runtime.heldout`)."""
    record = mapping(field, value)
    exact_keys(field, record, {"split_sha256", "examples", "best", "best_step"})
    _sha256(f"{field}.split_sha256", record["split_sha256"])
    integer(f"{field}.examples", record["examples"])
    integer(f"{field}.best_step", record["best_step"])
    if record["best"] is not None:
        number(f"{field}.best", record["best"], what="a finite number or None")


def _grad_scaler(field: str, value: Any) -> None:
    """fp16's gradient scaler (``torch.amp.GradScaler.state_dict()``)."""
    record = mapping(field, value)
    exact_keys(
        field,
        record,
        {"scale", "growth_factor", "backoff_factor", "growth_interval", "_growth_tracker"},
    )
    for key in ("scale", "growth_factor", "backoff_factor"):
        number(f"{field}.{key}", record[key], 0.0, "a finite number ≥ 0")
    for key in ("growth_interval", "_growth_tracker"):
        integer(f"{field}.{key}", record[key])


def _step(field: str, value: Any) -> None:
    integer(field, value)


def _elapsed(field: str, value: Any) -> None:
    number(field, value, 0.0, "a finite number of seconds ≥ 0")


@dataclass(frozen=True)
class Field:
    """One top-level field of a checkpoint.

    :param check: ``check(field, value)`` raises :class:`SchemaError`.
    :param since: the format version from which the field is required (absent before: ``None``).
    :param nullable: whether ``None`` is a valid value (from ``since`` on).
    :param optional: whether the field may be missing (read as ``None``) in any version.
    """

    check: Callable[[str, Any], None]
    since: int = 1
    nullable: bool = False
    optional: bool = False


FIELDS: dict[str, Field] = {
    "format": Field(_format),
    "format_version": Field(_version),
    "dtg_version": Field(text, 2),
    "model_name": Field(_name),
    "program_sha256": Field(_sha256, 2, nullable=True),
    "program": Field(text, 2, nullable=True, optional=True),
    "step": Field(_step),
    "model": Field(_state_dict),
    "optimizer": Field(_optimizer, 2),
    "ema": Field(_state_dict, 2, nullable=True),
    "rng": Field(check_rng, 2),
    "data_generator": Field(check_generator_state, 2),
    "train_options": Field(_train_options, 2),
    "source": Field(text, 2, nullable=True),
    "source_sha256": Field(_sha256),
    "file": Field(text, 2),
    "elapsed": Field(_elapsed, 2),
    "heldout": Field(_heldout, 2, nullable=True, optional=True),
    "grad_scaler": Field(_grad_scaler, 2, nullable=True, optional=True),
}


def check_content(content: dict[str, Any]) -> dict[str, Any]:
    """Check a loaded checkpoint against :data:`FIELDS` and the fields against each other.

    :param content: what ``torch.load`` returned (a dict whose ``format`` is :data:`FORMAT`).
    :returns: ``content``, with the fields version 1 lacked set to ``None``.
    :raises SchemaError: naming the first field that is missing, unknown or wrong.
    """
    if "format_version" not in content:
        raise SchemaError("format_version", "is missing")
    _version("format_version", content["format_version"])
    version = content["format_version"]
    for key in content:
        if key not in FIELDS:
            raise SchemaError(str(key) if isinstance(key, str) else describe(key), "is unknown")
    for key, spec in FIELDS.items():
        if key not in content:
            if spec.since <= version and not spec.optional:
                raise SchemaError(key, "is missing")
            content[key] = None
        elif content[key] is not None or not (spec.nullable or spec.since > version):
            spec.check(key, content[key])
    _agree(content)
    return content


def _agree(content: dict[str, Any]) -> None:
    """The checks between fields."""
    options, step = content.get("train_options") or {}, content["step"]
    if "steps" in options and step > options["steps"]:
        raise SchemaError("step", f"({step}) is beyond train_options.steps ({options['steps']})")
    ema = content.get("ema")
    if "ema" in options and (ema is not None) != (options["ema"] > 0):
        state = "has EMA weights" if ema is not None else "has no EMA weights"
        raise SchemaError("ema", f"does not fit train_options.ema = {options['ema']}: it {state}")
    if ema is not None:
        if not ema:
            raise SchemaError("ema", "is empty")
        model = content["model"]
        for key, value in ema.items():
            if key not in model:
                raise SchemaError(f"ema[{key!r}]", "names no weight of the field 'model'")
            if value.shape != model[key].shape or value.dtype != model[key].dtype:
                raise must(f"ema[{key!r}]", f"like model[{key!r}] ({describe(model[key])})", value)
    program = content.get("program")
    if program is not None and content["program_sha256"] != source_sha256(program):
        raise SchemaError("program_sha256", "is not the sha256 of the field 'program'")
    source = content.get("source")
    if source is not None or content["format_version"] >= 2:  # version 1 may lack the source
        if content["source_sha256"] != source_sha256(source):
            raise SchemaError("source_sha256", "is not the sha256 of the field 'source'")
    for index, entry in ((content.get("optimizer") or {}).get("state") or {}).items():
        count = entry["step"]
        if float(count) > step:
            raise SchemaError(
                f"optimizer.state[{index}].step", f"({float(count):g}) is beyond the step {step}"
            )

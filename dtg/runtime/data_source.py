"""Load a compiled model's declared data source (``data x : SPACE ~ source(…)``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import DtgDataError

__all__ = ["load_dataset"]


def load_dataset(model: Any, seed: int = 0):
    """The model's dataset on its device, or ``None`` for a sampler (no data).

    :raises DtgDataError: for any problem with the source or the file, located at the source.
    """
    from ..check.checker import option_value
    from ..check.shapes import ExprChecker, Scope
    from ..data import DataError, DataSpace, bind_options, load_source

    message = model.ir.message
    if message.role != "data":
        return None
    call = message.source
    source_text = getattr(model.program, "source", None)
    if call is None:
        raise DtgDataError(
            f"model '{model.ir.name}' declares data without a source",
            message.span,
            source_text,
            hints=['give one: data x : real[2] ~ file("points.npy")'],
        )
    checker = ExprChecker(Scope("", "", 0, {}, {}, {}), source_text or "")
    args = [option_value(a, checker) for a in call.args]
    kwargs = {k.name: option_value(k.value, checker) for k in call.kwargs}
    space = message.space
    base = Path(getattr(model.program, "file", ".")).resolve().parent
    try:
        options = bind_options(call.func, args, kwargs)
        dataset = load_source(
            call.func,
            options,
            DataSpace(space.kind, space.shape, space.vocab),
            seed=seed,
            base_dir=base,
        )
    except DataError as error:
        raise DtgDataError(
            error.message, call.span, source_text, hints=[error.hint] if error.hint else []
        ) from None
    return dataset.to(model.device)

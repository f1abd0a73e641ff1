"""Which discrete channel a compiled model runs for each role: :func:`build_discrete`.

The channel classes live by family — :mod:`dtg.channels.discrete` (the starts and the written-out
``Categorical`` kernel), :mod:`dtg.channels.mask` (``Mask``, ``MashLast`` and their ``Guess``),
:mod:`dtg.channels.shuffle` (``Shuffle`` and its ``Guess``) — and this module, which imports them
all, picks one from the model's IR. Keeping the choice here, above the families, is what lets
the family modules import :mod:`dtg.channels.discrete` without it importing them back.
"""

from __future__ import annotations

from typing import Any

from ..errors import DtgRuntimeError
from ..ir import Family
from .base import Channel
from .discrete import (
    CategoricalKernel,
    CategoricalStart,
    MaskedStart,
    net_closure,
    scores_every_position,
)
from .hybrid import HybridGuess, HybridMask
from .mash_random import MashRandom, MashRandomGuess
from .mask import MashLast, MashLastGuess, Mask, MaskGuess
from .shuffle import Shuffle, ShuffleGuess

__all__ = ["build_discrete"]


def build_discrete(model: Any, role: str) -> Channel:
    """The executable channel of ``role`` (``destroy``, ``start`` or ``generate``) of a compiled
    model whose message is a token space.

    :param model: the :class:`~dtg.runtime.compiled.CompiledModel` under construction (its
        ``destroy`` is built before ``start`` and ``generate``).
    :raises DtgRuntimeError: for a combination that has no executable form.
    """
    ir = model.ir
    space = ir.message.level_space
    shape, vocab = tuple(space.shape), int(space.vocab or 0)
    if role == "destroy":
        family = ir.destroy.family
        if family is Family.MASK and "redraw" in ir.destroy.tables:
            return HybridMask(ir.destroy.tables["keep"], ir.destroy.tables["redraw"], vocab)
        if family is Family.MASK:
            return Mask(ir.destroy.tables["keep"], vocab)
        if family is Family.SHUFFLE:
            return Shuffle(ir.destroy.tables["keep"], vocab)
        if family is Family.MASH_LAST:
            return MashLast(shape, vocab)
        if family is Family.MASH_RANDOM:
            order = ir.destroy.options.get("order")
            return MashRandom(shape, vocab, net_closure(model, order) if order else None)
    elif role == "start":
        channel = ir.start
        if channel.family is Family.SINGLETON and channel.params.get("value") == "masked":
            return MaskedStart(shape, vocab)
        if channel.family is Family.CATEGORICAL:
            return CategoricalStart(model._closure(channel.args["logits"], "next"), shape, vocab)
    elif role == "generate":
        channel = ir.generate
        if channel.family is Family.GUESS:
            predict = net_closure(model, channel.options["net"])
            destroy = model.destroy
            one_pass = scores_every_position(model, channel.options["net"])
            decoder = model.nets[channel.options["net"]] if one_pass else None
            if isinstance(destroy, Mask):
                guess = MaskGuess(destroy, predict, one_pass=one_pass)
                guess.set_decoder(decoder if guess.one_pass else None)  # a staircase only
                return guess
            if isinstance(destroy, MashLast):
                guess = MashLastGuess(destroy, predict, one_pass=one_pass)
                guess.set_decoder(decoder)
                return guess
            if isinstance(destroy, Shuffle):
                return ShuffleGuess(destroy, predict)
            if isinstance(destroy, HybridMask):
                return HybridGuess(destroy, predict)
            if isinstance(destroy, MashRandom):
                order = channel.options.get("order")
                return MashRandomGuess(
                    destroy, predict, net_closure(model, order) if order else None
                )
        if channel.family is Family.CATEGORICAL:
            return CategoricalKernel(model._closure(channel.args["logits"], "next"), shape, vocab)
    raise DtgRuntimeError(
        f"model '{ir.name}': this {role} kernel cannot be compiled yet",
        getattr(ir, "span", None),
        getattr(model.program, "source", None),
    )

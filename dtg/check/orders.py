"""Learned orders: the ``order = NET`` option of ``MashRandom`` and of its ``Guess``.

``destroy x[t] ~ MashRandom(x[t-1], order = pick)`` masks the unmasked position ``i`` with
probability ``softmax(pick(x[t-1]))_i`` over the unmasked positions (uniformly without the
option); ``generate x[t-1] ~ Guess(x[t], logits, order = reveal)`` reveals the masked position
``i`` with probability ``softmax(reveal(x[t]))_i`` over the masked ones. The net reads the
level's message (and the time when it declares one) and scores every position: its output is
``real`` with the message's shape.
"""

from __future__ import annotations

from typing import Any

from ..errors import DtgTypeError
from ..ir import Space
from ..syntax import ast

__all__ = ["order_net"]


def order_net(kernels: Any, node: ast.Expr, space: Space, where: str) -> str:
    """The name of the net an ``order = NET`` option names, checked.

    :param kernels: the kernel checker (its ``scope``, ``err`` and ``source``).
    :param node: the option's value. :param space: the message's (token) space.
    :param where: ``MashRandom`` or ``Guess``, for messages.
    :raises DtgTypeError: for anything but a declared net ``(space[, time]) -> real[shape]``.
    """
    nets = kernels.scope().nets
    shape = ", ".join(map(str, space.shape))
    example = f"net order : ({space}) -> real[{shape}] = transformer(…)"
    if not isinstance(node, ast.Name) or node.id not in nets:
        raise kernels.err(
            DtgTypeError, f"{where}'s order must name a declared net", node.span, example
        )
    net = nets[node.id]
    inputs = [s for s in net.inputs if s.kind != "time"]
    if inputs != [space] or net.output != Space("real", space.shape):
        raise kernels.err(
            DtgTypeError,
            f"{where}'s order net '{net.name}' must read {space} (and optionally time) and "
            f"score every position, real[{shape}]",
            node.span,
            example,
        )
    return net.name

"""The reward feeding a kernel: ``grad(logr, x[t])`` on the diagrams.

A kernel that calls ``grad(logr, x[t])`` (:class:`dtg.ir.expr.RewardGrad`, a Langevin
parametrisation) reads the gradient of the model's reward at a level. The diagram draws it as a
dashed arrow from the reward's factor box to the level the gradient is taken at, which is where
the fed step starts (``B′`` for ``generate x[t-1] ~ …(grad(logr, x[t]))``), labelled ``∇ logr``:
the step out of that level uses ``∇ log r`` there (a kernel reads no other level). One such arrow
per drawn step that uses the gradient, destruction steps included; the frozen parent's steps get
none (the factor box is the child's reward).
"""

from __future__ import annotations

from ..ir import Channel, ModelIR
from ..ir.expr import RewardGrad, walk
from ..ir.printer import reward_latex

__all__ = ["reward_grads", "grad_label", "NABLA"]

NABLA = "\u2207"


def reward_grads(channel: Channel) -> list[RewardGrad]:
    """The ``grad(…)`` calls of a kernel, in the order of its arguments.

    :param channel: a destruction or generation channel.
    :returns: every :class:`RewardGrad` in ``channel.args`` (empty when it uses none).
    """
    found = []
    for expr in channel.args.values():
        found += [node for node in walk(expr) if isinstance(node, RewardGrad)]
    return found


def grad_label(ir: ModelIR, channel: Channel) -> tuple[str, str] | None:
    """The label of the arrow from the reward to a step that uses its gradient.

    A kernel reads one level only, where its step starts, so that is where the gradient is taken.

    :param ir: the checked model (its reward names the gradient).
    :param channel: the step's channel.
    :returns: (plain text, LaTeX): ``∇ logr`` and ``\\nabla \\log r``; ``None`` when the kernel
        uses no gradient.
    """
    if ir.reward is None or not reward_grads(channel):
        return None
    name = ir.reward.name
    return f"{NABLA} {name}", rf"\nabla {reward_latex(name)}"

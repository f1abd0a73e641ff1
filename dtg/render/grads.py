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

__all__ = ["reward_grads", "grad_label", "reward_tex", "NABLA"]

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


def reward_tex(name: str) -> str:
    """The LaTeX of a log-reward's name: ``logr`` → ``\\log r``, ``loglik`` → ``\\log
    \\mathrm{lik}``, ``energy`` → ``\\mathrm{energy}``.

    :param name: the reward statement's name.
    :returns: LaTeX math.
    """
    rest = name[3:].lstrip("_") if name.startswith("log") else ""
    return rf"\log {_tex_name(rest)}" if rest else _tex_name(name)


def _tex_name(name: str) -> str:
    """A name in math: one letter in italics, a longer name upright."""
    return name if len(name) == 1 else rf"\mathrm{{{name}}}".replace("_", r"\_")


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
    return f"{NABLA} {name}", rf"\nabla {reward_tex(name)}"

"""A one-line description of a model: what ``repr(model)`` and ``repr(program)`` show.

The dataclasses' own reprs print every table, expression and span (25 KB for ``ddpm_moons``);
this prints what a reader looks for: the name (and parent), the message and its space, the number
of levels, the channel families (nets of learned channels in brackets), the reward and the
objective. It reads the model by attribute only, so :mod:`dtg.ir.model` can use it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["summarize", "channel_summary", "MAX_TEXT"]

#: Kernel texts (a start such as ``Normal(0, 1)``) longer than this are cut with "…".
MAX_TEXT = 32


def _brief(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1].rstrip() + "…"


def channel_summary(channel: Any) -> str:
    """A channel as its family and the nets it calls: ``GaussianShuffle``, ``Guess [eps]``.

    :param channel: a :class:`dtg.ir.model.Channel`.
    :returns: the text.
    """
    nets = f" [{', '.join(channel.nets)}]" if channel.nets else ""
    return channel.family.label + nets


def _chain(template: Any, levels: tuple) -> str:
    """A template's summary, or each level's (``Normal [enc1] | Normal [enc2]``, level 1 first)."""
    if not levels:
        return channel_summary(template)
    return " | ".join(channel_summary(channel) for channel in levels)


def summarize(ir: Any) -> str:
    """One line describing a checked model.

    ``ddpm_moons: data x : real[2] ~ moons, T = 100; destroy GaussianShuffle, start
    x[T] ~ Normal(0, 1), generate Guess [eps]; objective denoising`` (one line).

    :param ir: a :class:`dtg.ir.model.ModelIR`.
    :returns: the line, without a trailing newline.
    """
    head = ir.name + (f" extends {ir.parent.name}" if ir.parent is not None else "")
    message = ir.message
    source = f" ~ {message.source.name}" if message.source is not None else ""
    levels = f"{ir.steps_name} = {ir.steps}"
    start = ir.start
    arrow = "~" if start.stochastic else "="
    start_text = f"x[{ir.steps_name}] {arrow} {_brief(start.text)}"
    start_nets = f" [{', '.join(start.nets)}]" if start.nets else ""
    if ir.per_level:  # each level's kernel, and each level's space
        levels += " (" + " → ".join(str(space) for space in message.level_spaces) + ")"
    channels = (
        f"destroy {_chain(ir.destroy, ir.destroy_levels)}, start {start_text}{start_nets}, "
        f"generate {_chain(ir.generate, ir.generate_levels)}"
    )
    reward = f"; reward {ir.reward.name}" if ir.reward is not None else ""
    return (
        f"{head}: {message.role} {message.name} : {message.space}{source}, {levels}; "
        f"{channels}{reward}; objective {ir.objective.kind.value}"
    )

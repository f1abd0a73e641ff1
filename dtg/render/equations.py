"""The equations beside a diagram: each channel's kernel, as LaTeX or as a plain-text table."""

from __future__ import annotations

from ..ir import Channel, ModelIR
from .scene import as_model, tex_text

__all__ = ["equations", "channel_rows", "FORMATS"]

FORMATS = ("latex", "text")
_ROLES = ("destroy", "generate", "start")


def _kernel_source(ir: ModelIR, channel: Channel) -> str:
    """The kernel as dtg source: ``x[t] ~ Normal(…)``."""
    level = channel.target.replace("T", ir.steps_name)
    sign = "~" if channel.stochastic else "="
    return f"{ir.message.name}[{level}] {sign} {channel.text}"


def channel_rows(ir: ModelIR) -> list[tuple[str, str, str, str]]:
    """One row per channel: (role, family, learned nets or ``-``, kernel source).

    :param ir: the checked model.
    :returns: rows for destroy, generate and the generation start, in that order.
    """
    rows = []
    for role, channel in zip(_ROLES, ir.channels, strict=True):
        nets = ", ".join(channel.nets) or "-"
        rows.append((role, channel.family.label, nets, _kernel_source(ir, channel)))
    return rows


def _text_table(ir: ModelIR) -> str:
    header = ("channel", "family", "nets", "kernel")
    rows = [header, *channel_rows(ir)]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = []
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, row[3]]).rstrip())
    lines.insert(1, "  ".join("-" * w for w in [*widths, len(header[3])]))
    return "\n".join(lines)


def _latex(ir: ModelIR, env: str) -> str:
    steps = ir.steps_name
    lines = [f"% {tex_text(ir.name)}: the channels of the diagram", rf"\begin{{{env}}}"]
    rows = []
    for role, channel in zip(_ROLES, ir.channels, strict=True):
        body = channel.latex or rf"\texttt{{{tex_text(_kernel_source(ir, channel))}}}"
        family = rf"\mathsf{{{channel.family.label}}}"
        if channel.learned:
            family += rf",\ \text{{learned: {tex_text(', '.join(channel.nets))}}}"
        scope = rf"t = 1, \dots, {steps}" if role != "start" else ""
        rows.append(rf"  \text{{{role}}}\ ({family}) &:\quad {body} &&\quad {scope}")
    lines.append(" \\\\\n".join(rows))
    lines.append(rf"\end{{{env}}}")
    return "\n".join(lines)


def equations(ir: ModelIR, format: str = "latex", env: str = "align*") -> str:
    """Each channel's kernel: the ``channel.latex`` strings in an ``align*`` block, or a table.

    :param ir: the checked model.
    :param format: ``"latex"`` (an ``align*`` block) or ``"text"`` (a plain-text table).
    :param env: the LaTeX environment (``"align*"``; ``"aligned"`` to nest inside math).
    :returns: the block.
    """
    ir = as_model(ir)
    if format == "latex":
        return _latex(ir, env)
    if format == "text":
        return _text_table(ir)
    raise ValueError(f"unknown equations format {format!r}: expected one of {FORMATS}")

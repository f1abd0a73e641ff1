"""The equations beside a diagram: each channel's kernel, as LaTeX or as a plain-text table.

A template model has three rows: destroy, generate and the generation start, each template once
(``t = 1, …, T``). A model with kernels of single levels has one row per kernel, in the order of
its chains: destruction level by level (``x[1] ~ …``, ``x[2] ~ …``), then the start ``x[T]``,
then generation from ``x[T]`` down to ``x[0]`` (``x[1] ~ …``, ``x[0] ~ …``); a template beside
them is one row, at its first level, with the levels it covers (``t = 2..T``).
"""

from __future__ import annotations

from ..ir import Channel, ModelIR
from .levels import own, scope, template_levels
from .scene import as_model, kernel_source, tex_text

__all__ = ["equations", "channel_rows", "FORMATS"]

FORMATS = ("latex", "text")
_ROLES = ("destroy", "generate", "start")


def _kernels(ir: ModelIR) -> list[tuple[str, Channel, tuple[str, str]]]:
    """Each channel once, with its role and the range of ``t`` it covers (text, LaTeX)."""
    everywhere = ("", rf"t = 1, \dots, {ir.steps_name}")
    if not ir.per_level:
        return [
            (role, c, everywhere if role != "start" else ("", ""))
            for role, c in zip(_ROLES, ir.channels, strict=True)
        ]
    destroy = [ir.destroy_at(level) for level in range(1, ir.steps + 1)]
    generate = [ir.generate_at(level) for level in range(ir.steps, 0, -1)]
    out: list[tuple[str, Channel, tuple[str, str]]] = []
    for role, chain in (("destroy", destroy), ("start", [ir.start]), ("generate", generate)):
        for channel in chain:
            if any(channel is seen for _, seen, _ in out):
                continue
            covers = ("", "")
            if role != "start" and not own(channel):
                covers = scope(template_levels(ir, channel), ir.steps, ir.steps_name)
            out.append((role, channel, covers))
    return out


def channel_rows(ir: ModelIR) -> list[tuple[str, str, str, str]]:
    """One row per channel: (role, family, learned nets or ``-``, kernel source).

    :param ir: the checked model.
    :returns: rows for destroy, generate and the generation start, in that order; with kernels of
        single levels, one row per kernel in chain order (see the module), a template's kernel
        source followed by the levels it covers (``   (t = 2..T)``).
    """
    rows = []
    for role, channel, (covers, _) in _kernels(ir):
        nets = ", ".join(channel.nets) or "-"
        kernel = kernel_source(ir, channel) + (f"   ({covers})" if covers else "")
        rows.append((role, channel.family.label, nets, kernel))
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
    lines = [f"% {tex_text(ir.name)}: the channels of the diagram", rf"\begin{{{env}}}"]
    rows = []
    for role, channel, (_, covers) in _kernels(ir):
        body = channel.latex or rf"\texttt{{{tex_text(kernel_source(ir, channel))}}}"
        family = rf"\mathsf{{{channel.family.label}}}"
        if channel.learned:
            family += rf",\ \text{{learned: {tex_text(', '.join(channel.nets))}}}"
        rows.append(rf"  \text{{{role}}}\ ({family}) &:\quad {body} &&\quad {covers}")
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

"""A readable dump of the IR, the withholding graph (``dtg compile --emit ir``)."""

from __future__ import annotations

import numpy as np

from .model import Channel, Family, ModelIR
from .printer import to_text

__all__ = ["dump_ir"]


def _value(value: np.ndarray | float) -> str:
    """One entry of a table: a number, or a per-coordinate vector ``[a, b]``."""
    if np.ndim(value) == 0:
        return "nan" if np.isnan(value) else f"{value:.6g}"
    return "[" + ", ".join(_value(entry) for entry in np.ravel(value)) + "]"


def _row(values: np.ndarray, count: int) -> str:
    shown = ", ".join(_value(v) for v in values[:count])
    more = f", … ({len(values)} entries)" if len(values) > count else ""
    return f"[{shown}{more}]"


#: Families whose keep may be per position (a hyperschedule), shown as ``keep(t, i)``.
_PER_POSITION = (Family.MASK, Family.SHUFFLE)


def _channel(title: str, channel: Channel, rows: int, steps_name: str) -> list[str]:
    arrow = "⇀" if channel.stochastic else "→"
    source = f"x[{channel.source}]" if channel.source else "·"
    lines = [
        f"  {title}: {source} {arrow} x[{channel.target}]  family={channel.family.name} "
        f"({'learned: ' + ', '.join(channel.nets) if channel.learned else 'fixed'})",
        f"    kernel: {channel.text}",
    ]
    for name, value in channel.args.items():
        lines.append(f"    {name} = {to_text(value, steps_name)}  : {value.space}")
    if channel.family is not Family.NORMAL:  # a general Normal's parameters are its args
        for name, value in channel.params.items():
            per_position = name in channel.tables and channel.tables[name].ndim > 1
            shown = "(t, i)" if per_position and channel.family in _PER_POSITION else "(t)"
            lines.append(f"    {name}{shown} = {value}")
    for name, value in channel.options.items():
        lines.append(f"    option {name} = {value}")
    for name, table in channel.tables.items():
        lines.append(f"    table {name}: {_row(table, rows)}")
    if channel.latex and not channel.learned:  # a learned kernel's LaTeX is for diagrams
        lines.append(f"    latex: {channel.latex}")
    return lines


def _levels(ir: ModelIR, rows: int) -> list[str]:
    """Per-level kernels: each level's own channel, and a template once, with its levels."""
    lines: list[str] = []
    for role, channels in (("destroy", ir.destroy_levels), ("generate", ir.generate_levels)):
        template = [k + 1 for k, c in enumerate(channels) if not c.single_level]
        for level, channel in enumerate(channels, start=1):
            if level in template[1:]:
                continue
            title = (
                f"{role} (levels {', '.join(map(str, template))})"
                if level in template
                else (f"{role} level {level}")
            )
            lines += _channel(title, channel, rows, ir.steps_name)
    return lines


def dump_ir(ir: ModelIR, rows: int = 5) -> str:
    """The withholding graph of one model, with the first ``rows`` entries of each table."""
    message = ir.message
    lines = [
        f"model {ir.name}" + (f" extends {ir.parent.name}" if ir.parent else ""),
        f"  steps {ir.steps_name} = {ir.steps}",
        f"  message {message.name}: x[0] : {message.space} ({message.role})"
        + (
            "".join(f", x[{k}] : {s}" for k, s in enumerate(message.level_spaces) if k)
            if message.level_spaces
            else f", x[1..T] : {message.level_space}"
            if message.level_space != message.space
            else ""
        )
        + (" with [MASK]" if message.masked else ""),
    ]
    if message.source is not None:
        options = ", ".join(f"{k} = {v!r}" for k, v in message.source.options.items())
        lines.append(f"  source: {message.source.name}({options})")
    for name, net in ir.nets.items():
        inputs = ", ".join(map(str, net.inputs))
        options = ", ".join(f"{k}={v}" for k, v in net.options.items())
        lines.append(
            f"  net {name}: ({inputs}) -> {net.output} = {net.arch}({options})"
            f"  [{net.parameters:,} parameters]"
        )
    for name, definition in ir.schedule_defs.items():
        params = ", ".join(definition.params)
        lines.append(f"  schedule {name}({params}) = {to_text(definition.body, ir.steps_name)}")
        if name in ir.schedules:
            lines.append(f"    table: {_row(ir.schedules[name], rows)}")
    if ir.per_level:  # each level's kernel, in the order of the chain; a template once
        lines += _levels(ir, rows)
    else:
        lines += _channel("destroy", ir.destroy, rows, ir.steps_name)
        lines += _channel("generate", ir.generate, rows, ir.steps_name)
    lines += _channel("start", ir.start, rows, ir.steps_name)
    for name, table in ir.marginals.items():
        lines.append(f"  marginal {name}: {_row(table, rows)}")
    if ir.reward is not None:
        lines.append(
            f"  reward {ir.reward.name} = {to_text(ir.reward.body, ir.steps_name)}"
            + (f"  (target {ir.reward.target})" if ir.reward.target else "")
        )
    options = ", ".join(f"{k}={v}" for k, v in ir.objective.options.items() if v is not None)
    lines.append(f"  objective {ir.objective.kind.value}({options})")
    lines.append("  train " + ", ".join(f"{k}={v}" for k, v in ir.train.items()))
    return "\n".join(lines)

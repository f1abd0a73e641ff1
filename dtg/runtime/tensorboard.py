"""Experiment logs for TensorBoard (``dtg train --tensorboard DIR``, ``train(tensorboard=DIR)``).

Beside ``metrics.jsonl`` (which stays the record), every metric line goes to a TensorBoard event
file in ``DIR`` as scalars under ``train/`` (the loss, the learning rate, steps per second, the
objective's metrics) and every held-out evaluation under ``heldout/``; at the start the model's
``.dtg`` source and its IR are written as text and its diagram (SVG) as text too (TensorBoard
shows no SVG images); at each held-out evaluation a grid of 16 samples is written as an image,
drawn under a forked random state so that training continues exactly as without the log.

The ``tensorboard`` package is optional (``pip install tensorboard``; the ``tensorboard`` and
``dev`` extras have it); without it, asking for a log is an error that says how to install it.

References: ``torch.utils.tensorboard.SummaryWriter``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import torch

from ..errors import DtgRuntimeError

__all__ = ["Board"]


class Board:
    """One run's TensorBoard writer.

    :param folder: the log folder (created).
    :param model: the compiled model (its program, IR and sampler).
    :param step: the step the run starts at (a resumed run appends).
    """

    def __init__(self, folder: str | Path, model: Any, step: int = 0) -> None:
        try:
            # optional: only runs asked to log to TensorBoard import it
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise DtgRuntimeError(
                "--tensorboard needs the tensorboard package",
                hints=["pip install tensorboard (or the extra: pip install dtg[tensorboard])"],
            ) from None
        self.model = model
        # a resumed run drops what a run that died after its checkpoint (step) logged beyond it
        self.writer = SummaryWriter(log_dir=str(folder), purge_step=step + 1 if step else None)
        if step == 0:
            self._describe(model)

    def _describe(self, model: Any) -> None:
        source = getattr(model.program, "source", None) or ""
        self.writer.add_text("model/source", f"```\n{source}\n```", 0)
        try:
            from ..ir.dump import dump_ir  # lazy: only for the log's text
            from ..render.output import svg  # lazy: graphviz only when logging

            self.writer.add_text("model/ir", f"```\n{dump_ir(model.ir)}\n```", 0)
            self.writer.add_text("model/diagram_svg", svg(model.ir), 0)
        except Exception as error:  # a diagram that cannot be drawn never stops training
            self.writer.add_text("model/diagram_svg", f"(not drawn: {error})", 0)

    def scalars(self, step: int, line: dict[str, Any], prefix: str) -> None:
        """Write the numeric entries of a metric line (``step`` excluded) under ``prefix``.

        :param step: the line's step. :param line: the metric line. :param prefix: ``train`` or
            ``heldout``.
        """
        for key, value in line.items():
            if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool):
                self.writer.add_scalar(f"{prefix}/{key}", float(value), step)
        self.writer.flush()

    def samples(self, step: int, shadow: dict[str, torch.Tensor] | None = None) -> None:
        """A grid of 16 samples, drawn without touching the run's random state.

        :param step: the step they are logged at (and their seed).
        :param shadow: the EMA weights to draw them with (as the held-out figures are), or
            ``None`` for the model's own.
        """
        from ..runtime.heldout import evaluation_weights  # lazy: the held-out module's swap
        from ..runtime.plots import plot_samples  # heavy: matplotlib

        device = torch.device(self.model.device)
        forked = [device] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=forked, device_type=device.type):
            torch.manual_seed(step)
            with evaluation_weights(self.model, shadow):
                drawn = self.model.sample(16)
        try:
            import matplotlib.image as image  # heavy: only here

            with tempfile.TemporaryDirectory() as folder:
                picture = plot_samples(drawn, self.model.ir.message.space, Path(folder) / "s.png")
                pixels = image.imread(picture)
        except Exception as error:  # a picture that cannot be drawn never stops training
            self.writer.add_text("samples/error", str(error), step)
            return
        self.writer.add_image("samples", pixels[..., :3], step, dataformats="HWC")
        self.writer.flush()

    def close(self) -> None:
        """Flush and close the event file."""
        self.writer.close()

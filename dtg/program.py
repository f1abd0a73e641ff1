"""Loading ``.dtg`` source: :func:`load` and :func:`loads` return a checked :class:`Program`."""

from __future__ import annotations

import contextlib
import gc
from dataclasses import dataclass
from pathlib import Path

from .check import check_module
from .errors import DtgError
from .ir import ModelIR
from .ir.summary import summarize
from .syntax import ast, parse

__all__ = ["Program", "load", "loads"]


@dataclass
class Program:
    """A parsed and checked file: its models in source order.

    :param module: the AST of the whole file.
    :param file: the file name used in messages.
    """

    module: ast.Module
    file: str
    irs: list[ModelIR]

    @property
    def models(self) -> list[ModelIR]:
        """The checked models in source order."""
        return self.irs

    def model(self, name: str | None = None) -> ModelIR:
        """One model by name; without a name, the file's only (or last) model.

        :raises KeyError: when no model has that name.
        """
        if name is None:
            return self.irs[-1]
        for ir in self.irs:
            if ir.name == name:
                return ir
        raise KeyError(f"no model '{name}' in {self.file}; models: {[m.name for m in self.irs]}")

    @property
    def source(self) -> str:
        return self.module.source

    def render(self, path: str | Path, model: str | None = None, **options) -> Path:
        """Draw a model as a generative commutative diagram; the format follows the suffix.

        :param path: ``.svg``, ``.png``, ``.pdf`` (need Graphviz's ``dot``), ``.dot`` or ``.tex``.
        :param model: the model's name (default: the file's last model).
        :param options: ``view`` (compact, unrolled, zoom), ``labels`` (letters, indexed),
            ``equations`` (bool).
        """
        from .render import render  # lazy: graphviz is imported only to draw

        render(self.model(model), path, **options)
        return Path(path)

    def compile(self, device: str = "auto", model: str | None = None):
        """Build the model's nets, channels and objective on ``device`` (``auto``: CUDA if any).

        :returns: a :class:`dtg.backends.torch.model.CompiledModel` (an ``nn.Module``).
        """
        from .backends.torch import compile_program  # heavy: imports torch

        return compile_program(self, model, device)

    def __repr__(self) -> str:
        """The file and one line per model (name, message, levels, channels, objective)."""
        lines = [f"model {summarize(ir)}" for ir in self.irs]
        if len(lines) == 1:
            return f"<Program {self.file}, {lines[0]}>"
        body = "".join(f"\n  {line}" for line in lines)
        return f"<Program {self.file}, {len(lines)} models:{body}>"

    def _repr_svg_(self) -> str:
        from .render import svg  # lazy: graphviz is imported only to draw

        return svg(self.model())


def loads(
    source: str | bytes, file: str = "<string>", _loading: frozenset[str] = frozenset()
) -> Program:
    """Parse and check dtg source text.

    A model may extend a parent defined in the same text or, when ``file`` is a path, in
    ``PARENT.dtg`` beside it (``model rtb_even extends ddpm_digits`` finds ``ddpm_digits.dtg``).

    :param source: the text (or UTF-8 bytes).
    :param file: the name shown in error messages (and the folder parents are looked up in).
    :raises DtgError: for any mistake in the text, with its location.
    """
    try:
        with _no_cyclic_gc():
            module = parse(source, file)
            parents = _external_parents(module, file, _loading)
            irs = check_module(module, parents)
    except DtgError as error:
        if isinstance(source, str) and (error.span is None or error.span.file == file):
            error.with_source(source)
        raise
    return Program(module, file, irs)


@contextlib.contextmanager
def _no_cyclic_gc():
    """Pause the cyclic garbage collector: parsing allocates many small objects that are all
    alive until the end, and its passes over them took 40% of checking a large file."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _external_parents(module: ast.Module, file: str, loading: frozenset[str]) -> dict[str, ModelIR]:
    """Parents named by ``extends`` but not defined in this file, loaded from sibling files."""
    defined = {m.name for m in module.models}
    wanted = {m.parent for m in module.models if m.parent and m.parent not in defined}
    if not wanted or file.startswith("<"):
        return {}
    found: dict[str, ModelIR] = {}
    folder = Path(file).parent
    for name in sorted(wanted):
        path = folder / f"{name}.dtg"
        key = str(path.resolve())
        if not path.exists() or key in loading:
            continue  # the checker reports the unknown parent, with a hint
        program = loads(
            path.read_bytes(), file=str(path), _loading=loading | {str(Path(file).resolve())}
        )
        try:
            found[name] = program.model(name)
        except KeyError:
            continue
    return found


def load(path: str | Path) -> Program:
    """Read, parse and check a ``.dtg`` file.

    :param path: the file.
    :raises DtgError: for any mistake in the file; a missing file raises :class:`FileNotFoundError`.
    """
    path = Path(path)
    return loads(path.read_bytes(), file=str(path))

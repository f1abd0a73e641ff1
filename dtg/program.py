"""Loading ``.dtg`` source: :func:`load` and :func:`loads` return a checked :class:`Program`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import DtgError
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

    @property
    def models(self) -> tuple[ast.Model, ...]:
        return self.module.models

    @property
    def source(self) -> str:
        return self.module.source


def loads(source: str | bytes, file: str = "<string>") -> Program:
    """Parse and check dtg source text.

    :param source: the text (or UTF-8 bytes).
    :param file: the name shown in error messages.
    :raises DtgError: for any mistake in the text, with its location.
    """
    try:
        module = parse(source, file)
    except DtgError as error:
        if isinstance(source, str):
            error.with_source(source)
        raise
    return Program(module, file)


def load(path: str | Path) -> Program:
    """Read, parse and check a ``.dtg`` file.

    :param path: the file.
    :raises DtgError: for any mistake in the file; a missing file raises :class:`FileNotFoundError`.
    """
    path = Path(path)
    return loads(path.read_bytes(), file=str(path))

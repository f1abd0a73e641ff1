"""The argparse layer of ``dtg``: whole flag names only, errors as :class:`UsageError`.

Two departures from plain argparse. A flag must be spelt out (``allow_abbrev=False``): argparse
would otherwise read ``--step 10`` as ``--steps 10`` without a word, and a prefix that means one
flag today may mean two tomorrow. An unknown flag gets a did-you-mean from the flags of the
command it was given to. :class:`LazyChoices` lets a command offer the values a stage defines
(the render views) without importing that stage until the values are needed.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from ..errors import did_you_mean
from .errors import UsageError

__all__ = ["Parser", "LazyChoices"]


class Parser(argparse.ArgumentParser):
    """An argument parser that raises :class:`UsageError` instead of exiting, so ``main`` decides.

    Every parser of the ``dtg`` command line is one: the subcommand parsers are made with
    ``parser_class=Parser``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["allow_abbrev"] = False  # a prefix such as --step is an unknown flag, not --steps
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        """Raise the message with this parser's usage line.

        :param message: argparse's description of the mistake.
        :raises UsageError: always.
        """
        raise UsageError(f"{self.prog}: error: {message}\n{self.format_usage().rstrip()}")

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: Any = None
    ) -> argparse.Namespace:
        """Parse the command line; an unknown argument is a usage error with a did-you-mean.

        :param args: the arguments (default: ``sys.argv[1:]``).
        :param namespace: where to store them (default: a new namespace).
        :returns: the parsed arguments.
        :raises UsageError: for any mistake in the command line.
        """
        parsed, unknown = self.parse_known_args(args, namespace)
        if unknown:
            message = f"unrecognized arguments: {' '.join(unknown)}"
            hint = self._flag_hint(parsed, unknown)
            self.error(f"{message}; {hint}" if hint else message)
        return parsed

    def _flag_hint(self, parsed: Any, unknown: list[str]) -> str | None:
        """A did-you-mean for the first unknown flag that is close to a flag of its command."""
        flags = self._flags(getattr(parsed, "command", None))
        for item in unknown:
            if item.startswith("-") and len(item) > 1:
                hint = did_you_mean(item.partition("=")[0], flags, n=1)
                if hint:
                    return hint
        return None

    def _flags(self, command: str | None) -> list[str]:
        """The flags of ``command``'s parser (of this parser when there is no such command)."""
        parser: argparse.ArgumentParser = self
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction) and command in action.choices:
                parser = action.choices[command]
        return [flag for action in parser._actions for flag in action.option_strings]


class LazyChoices(Sequence[str]):
    """The valid values of a flag, read from the stage that defines them on first use.

    argparse only iterates over ``choices`` and tests membership, when it checks a value or
    prints a usage line, so the stage is imported only when the command is used.

    :param load: returns the values (imports the stage).
    """

    def __init__(self, load: Callable[[], Sequence[str]]) -> None:
        self._load = load
        self._values: tuple[str, ...] | None = None

    def _get(self) -> tuple[str, ...]:
        if self._values is None:
            self._values = tuple(self._load())
        return self._values

    def __getitem__(self, index: Any) -> Any:  # an int or a slice, as for a tuple
        return self._get()[index]

    def __len__(self) -> int:
        return len(self._get())

"""The one error type of the data package: a user-facing problem with a source or a data file.

The checker and the runtime turn a :class:`DataError` into a located
:class:`~dtg.errors.DtgDataError` (with the span of the ``data`` statement's source call).
"""

from __future__ import annotations

__all__ = ["DataError"]


class DataError(Exception):
    """A user-facing problem with a data source or a data file.

    :param message: what is wrong (names the file and the first offending row where relevant).
    :param hint: an optional suggestion for the fix.
    """

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if self.hint is None else f"{self.message}\nhint: {self.hint}"

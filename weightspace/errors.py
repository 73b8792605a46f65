"""Errors the core raises about its input, which the API turns into 422 problems naming a field."""

from __future__ import annotations


class InvalidField(ValueError):
    """A field of the request is not acceptable; ``field`` is its dotted path (``body``,
    ``selection.1.runs``, ``header.x-metrics``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field

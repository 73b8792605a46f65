"""Who is asking, and the errors every use case shares (each mapped to one HTTP status).

Small and free of heavy imports, so a command that only manages tokens loads neither torch nor
Celery.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    """Who is asking. Every query is scoped to the principal's own experiments (all, for an
    admin); ``token`` is the id of the token presented, if any (what rate limits count)."""

    id: str
    admin: bool = False
    token: str | None = None

    def owns(self, owner: str) -> bool:
        return self.admin or owner == self.id


ANONYMOUS = Principal("anonymous")


class NotFound(LookupError):
    pass


class Conflict(RuntimeError):
    """The request is valid but the experiment's current state cannot answer it (HTTP 409)."""


class Unsupported(Conflict):
    """The request is valid but this experiment can never answer it, whatever its state (HTTP
    409); the message says what to do instead."""


class InvalidQuery(ValueError):
    """A query parameter is out of range for this experiment (HTTP 422, naming ``field``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field

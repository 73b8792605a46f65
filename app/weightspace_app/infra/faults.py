"""Which errors are transient (retry: the run resumes from its last stored state) and which are
permanent (the experiment fails, with a message that names the cause but no internal address)."""

from __future__ import annotations

import re

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from weightspace.snapshots import StoreUnavailable

_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)
_HOST_PORT = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b|\blocalhost:\d+\b")


class Transient(RuntimeError):
    """A fault worth retrying; ``cause`` is the original error."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(describe(cause))
        self.cause = cause


def is_transient(error: BaseException) -> bool:
    if isinstance(error, Transient | StoreUnavailable | PoolTimeout | ConnectionError):
        return True
    if isinstance(error, OperationalError | InterfaceError):
        return True
    return isinstance(error, DBAPIError) and bool(error.connection_invalidated)


def redact(text: str) -> str:
    """``text`` without URLs (which may carry credentials) or host:port addresses."""
    return _HOST_PORT.sub("<address>", _URL.sub("<url>", text))


def describe(error: BaseException) -> str:
    """``Type: message`` of ``error``, redacted and bounded, for users and the database."""
    if isinstance(error, DBAPIError):
        message = f"database error ({type(error.orig).__name__})"
    else:
        message = str(error)
    return redact(f"{type(error).__name__}: {message}")[:1000]


def backoff(attempt: int, base: float, cap: float) -> float:
    """Seconds to wait before retry ``attempt`` (0-based): ``base * 2**attempt``, at most ``cap``."""
    return float(min(cap, base * 2 ** min(attempt, 30)))

"""One logging configuration for the API and the worker, with context on every line.

``configure()`` sets the root logger once per process: plain text (default) or JSON lines
(``WEIGHTSPACE_LOG_FORMAT=json``), at ``WEIGHTSPACE_LOG_LEVEL``. Code that works on behalf of a
request or an experiment wraps itself in ``context(request_id=..., experiment_id=..., run=...)``;
every record logged inside (from any thread that inherited the context) carries those fields.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

#: The fields a log line may carry, in the order they are printed.
FIELDS = ("request_id", "experiment_id", "suite_id", "run", "epoch")
# Immutable default (a mapping proxy would do too): each context() sets a new dict.
_context: contextvars.ContextVar[tuple[tuple[str, Any], ...]] = contextvars.ContextVar(
    "weightspace_log_context", default=()
)
_HANDLER_NAME = "weightspace"


def current(name: str) -> Any:
    """The value of one context field (None outside any context that set it)."""
    return dict(_context.get()).get(name)


@contextlib.contextmanager
def context(**fields: Any) -> Iterator[None]:
    """Add ``fields`` (a subset of :data:`FIELDS`) to every record logged inside the block."""
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise ValueError(f"unknown log context fields: {sorted(unknown)}")
    merged = {**dict(_context.get()), **{k: v for k, v in fields.items() if v is not None}}
    token = _context.set(tuple(merged.items()))
    try:
        yield
    finally:
        _context.reset(token)


class _ContextFilter(logging.Filter):
    """Copy the context onto the record, so formatters (and tests) see it as attributes."""

    def filter(self, record: logging.LogRecord) -> bool:
        values = dict(_context.get())
        for name in FIELDS:
            if not hasattr(record, name):
                setattr(record, name, values.get(name))
        return True


class TextFormatter(logging.Formatter):
    """``2026-11-28T17:55:21Z INFO  weightspace.x [experiment_id=... run=2] message``."""

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        tags = " ".join(
            f"{name}={getattr(record, name)}"
            for name in FIELDS
            if getattr(record, name, None) is not None
        )
        line = f"{when} {record.levelname:<5} {record.name}"
        line += f" [{tags}] " if tags else " "
        line += record.getMessage()
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JSONFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the context fields, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value if isinstance(value, int | float) else str(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure(level: str = "INFO", fmt: str = "text") -> None:
    """Send every logger's records to stderr in ``fmt`` ("text" or "json"); idempotent."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == _HANDLER_NAME:
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JSONFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(_ContextFilter())
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Libraries that log every statement or connection at INFO stay at WARNING.
    for noisy in ("sqlalchemy.engine", "botocore", "boto3", "urllib3", "s3transfer", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # uvicorn's own handlers would print a second, context-less copy: let ours do it.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    # One access line per request comes from the API's middleware, with its request id.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)

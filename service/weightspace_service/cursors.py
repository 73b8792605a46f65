"""Opaque page cursors: what the last item of a page was, for the list routes to continue after."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime

from weightspace_app.access import InvalidQuery


def encode_cursor(*values: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(values, default=str).encode()).decode()


def bad_cursor() -> InvalidQuery:
    return InvalidQuery("cursor", "not a cursor returned by this API")


def decode_cursor(cursor: str) -> object:
    try:
        return json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, UnicodeError, RecursionError):
        raise bad_cursor() from None


def created_cursor(created_at: datetime, item_id: uuid.UUID) -> str:
    """The cursor after an item of a newest-first list (its creation time and id)."""
    return encode_cursor(created_at.isoformat(), str(item_id))


def after_created(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    """(created_at, id) of :func:`created_cursor`'s cursor, or None for the first page."""
    if cursor is None:
        return None
    values = decode_cursor(cursor)
    if not (
        isinstance(values, list) and len(values) == 2 and all(isinstance(v, str) for v in values)
    ):
        raise bad_cursor()
    try:
        return datetime.fromisoformat(values[0]), uuid.UUID(values[1])
    except ValueError:
        raise bad_cursor() from None

"""Path and query parameters shared by the routes, bounded so that the OpenAPI document shows the
bounds and no integer reaches the database out of its column's range (``Integer``: 32 bits)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Header, Path, Query
from pydantic import Field

INT32_MAX = 2**31 - 1
#: Most epochs one selection of snapshots may name (``GET /experiments/{id}/pca``, each part of
#: ``POST /analyses``): a query string of that many stays within common 8 KiB request lines.
MAX_SELECTED_EPOCHS = 256

RunPath = Annotated[int, Path(ge=0, le=INT32_MAX, description="Run index (0-based).")]
EpochPath = Annotated[int, Path(ge=0, le=INT32_MAX, description="Epoch of the snapshot.")]
BoundedInt = Annotated[int, Field(ge=0, le=INT32_MAX)]
Limit = Annotated[int, Query(ge=1, le=200, description="Page size.")]
Cursor = Annotated[
    str | None, Query(max_length=200, description="`next_cursor` of the previous page.")
]
IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        pattern=r"^[\x21-\x7e]+$",
        description="Any unique printable string (a UUID): the same key and request within 24 "
        "hours return the original resource (same status and Location) and create nothing; the "
        "same key with a different request is 422.",
    ),
]

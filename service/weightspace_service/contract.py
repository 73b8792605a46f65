"""What the OpenAPI document says beyond what FastAPI derives: its title and the shared fields.

The title names the API for client generators: openapi-python-client, for one, names the
package it generates after it (``weightspace API`` -> ``weightspace_api_client``), which must
not be ``weightspace_client``, the package of our own client and CLI.
"""

from __future__ import annotations

from typing import Any

TITLE = "weightspace API"

#: Fields that mean the same in every schema they appear in, described once. A schema's own
#: description of such a field wins.
SHARED_FIELDS: dict[str, str] = {
    "run": "Run (replica) index within its experiment, 0..replicas-1.",
    "epoch": "Training epoch (0: before the first step; clones start at `pretrain_epochs`).",
    "experiment_id": "The experiment's id.",
    "complete": "False while the experiment is still running: the answer covers what exists.",
    "next_cursor": "Pass as `cursor` for the next page; null on the last page.",
    "created_at": "When it was created (ISO 8601, UTC).",
    "started_at": "When work on it started (null until then).",
    "finished_at": "When it ended (null until then).",
    "updated_at": "When it last changed.",
}


def describe_shared_fields(document: dict[str, Any]) -> dict[str, Any]:
    """Give every property named in :data:`SHARED_FIELDS` its description, where it has none."""
    for schema in document.get("components", {}).get("schemas", {}).values():
        for name, prop in schema.get("properties", {}).items():
            if name in SHARED_FIELDS and "description" not in prop:
                prop["description"] = SHARED_FIELDS[name]
    return document

"""The committed OpenAPI document is the app's, and documents every response."""

from __future__ import annotations

import json

from scripts.openapi import DOCUMENT, document, render


def test_committed_document_matches_the_app() -> None:
    assert DOCUMENT.read_text() == render(), (
        "openapi/openapi.json drifted: run `python scripts/openapi.py`"
    )


def test_every_operation_has_a_stable_id_and_documented_problems() -> None:
    doc = document()
    ids = []
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            ids.append(operation["operationId"])
            assert "500" in operation["responses"], (method, path)
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")) and path not in ("/ready",):
                    assert "application/problem+json" in response["content"], (method, path, status)
    assert len(ids) == len(set(ids))
    assert {
        "create_experiment",
        "get_pca",
        "get_distances",
        "get_trajectory",
        "download_snapshot",
    } <= set(ids)
    assert json.loads(DOCUMENT.read_text())["info"]["title"] == "weightspace API"

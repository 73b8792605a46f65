"""The committed OpenAPI document serves client generators and readers: names, words, examples.

Checked on openapi/openapi.json (test_openapi_drift.py checks it is the app's), so the checks
cover every schema and route, including ones added later:

- every property of every schema says what it is (``description``);
- every JSON request body comes with an example;
- only status codes the service sends are documented (a 400 is not: bad JSON gets 422);
- the title does not make generators name their package ``weightspace_client`` (ours).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

DOCUMENT = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"
#: Status codes no route of the service answers with.
NEVER_SENT = {"400"}


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return json.loads(DOCUMENT.read_text())


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, operations in doc["paths"].items()
        for method, operation in operations.items()
    ]


def test_every_schema_property_has_a_description(doc: dict[str, Any]) -> None:
    missing = [
        f"{name}.{prop}"
        for name, schema in doc["components"]["schemas"].items()
        for prop, definition in schema.get("properties", {}).items()
        if not str(definition.get("description", "")).strip()
    ]
    assert not missing, (
        "schema fields without a description (give each `Field(description=...)`, or add the "
        f"name to weightspace_service.contract.SHARED_FIELDS if it means the same everywhere): "
        f"{missing}"
    )


def test_every_json_request_body_has_an_example(doc: dict[str, Any]) -> None:
    missing = []
    for method, path, operation in _operations(doc):
        content = operation.get("requestBody", {}).get("content", {})
        for media_type, body in content.items():
            if "json" not in media_type:
                continue  # binary uploads: the description says what the bytes are
            schema = body.get("schema", {})
            ref = schema.get("$ref", "")
            target = doc["components"]["schemas"].get(ref.rsplit("/", 1)[-1], {}) if ref else {}
            if not any(
                "example" in place or place.get("examples") for place in (body, schema, target)
            ):
                missing.append(f"{method} {path}")
    assert not missing, (
        "JSON request bodies without an example (`Body(openapi_examples=...)`): " + str(missing)
    )


def test_no_status_code_is_documented_that_the_service_never_sends(doc: dict[str, Any]) -> None:
    documented = [
        f"{method} {path}: {status}"
        for method, path, operation in _operations(doc)
        for status in operation["responses"]
        if status in NEVER_SENT
    ]
    assert not documented, documented


def _generated_package(title: str) -> str:
    """The package name openapi-python-client derives from a title (its snake_case + _client)."""
    words = re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+", title)
    return "_".join(w.lower() for w in words) + "_client"


def test_generated_clients_are_not_named_like_ours(doc: dict[str, Any]) -> None:
    assert _generated_package("weightspace") == "weightspace_client"  # the collision we avoid
    assert _generated_package(doc["info"]["title"]) != "weightspace_client"

"""The API as a stranger tries it: odd methods, odd bodies, huge numbers (no input may give 500).

On a real migrated PostgreSQL (whose integer columns are what 2**31 overflows).
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from weightspace_app.infra.settings import Settings

from scripts.openapi import DOCUMENT
from weightspace_service.app import create_app

pytestmark = pytest.mark.integration

SPEC = {
    "dataset": {"name": "digits", "train_size": 100, "test_size": 50},
    "model": {"kind": "mlp", "hidden": [4]},
    "epochs": 1,
}
OPENAPI = json.loads(DOCUMENT.read_text())


def settings_for(tmp_path: Path, database_url: str, **changes: Any) -> Settings:
    return Settings(
        home=tmp_path,
        database_url=database_url,
        broker_url=f"sqla+sqlite:///{tmp_path / 'broker.db'}",
        storage_url=f"file://{tmp_path / 'snapshots'}",
        **changes,
    )


@pytest.fixture
def client(tmp_path: Path, migrated_postgres_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(tmp_path, migrated_postgres_url))) as test_client:
        yield test_client


def is_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


def integer_path_params() -> list[tuple[str, str, str]]:
    """(method, path template, parameter) for every integer path parameter in the document."""
    found = []
    for path, operations in OPENAPI["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path" and parameter["schema"].get("type") == "integer":
                    found.append((method, path, parameter["name"]))
    return found


def test_every_integer_path_parameter_is_bounded_in_the_document() -> None:
    params = integer_path_params()
    assert params, "the document has integer path parameters"
    for method, path, name in params:
        operation = OPENAPI["paths"][path][method]
        schema = next(p["schema"] for p in operation["parameters"] if p["name"] == name)
        assert schema.get("maximum") == 2**31 - 1 and schema.get("minimum") == 0, (path, name)


@pytest.mark.parametrize("value", [2**31, 2**63, 2**70, -1])
def test_huge_integers_in_every_path_parameter_are_422(client: TestClient, value: int) -> None:
    experiment_id = client.post("/experiments", json=SPEC).json()["id"]
    for method, template, name in integer_path_params():
        path = template.replace("{experiment_id}", experiment_id).replace(
            "{suite_id}", experiment_id
        )
        values = {p: "0" for p in re.findall(r"{(\w+)}", path)}
        values[name] = str(value)
        problem = is_problem(client.request(method, path.format(**values)), 422)
        assert f"path.{name}" in [e["field"] for e in problem["errors"]]


@pytest.mark.parametrize(
    "cursor", [[2**70], [True], [-1], ["x"], {"a": 1}, [1, 2], "plain", None, [[[[]]]]]
)
def test_forged_cursors_are_422(client: TestClient, cursor: Any) -> None:
    experiment_id = client.post("/experiments", json=SPEC).json()["id"]
    encoded = base64.urlsafe_b64encode(json.dumps(cursor).encode()).decode()
    for path in ("/experiments", f"/experiments/{experiment_id}/runs/0/snapshots"):
        problem = is_problem(client.get(path, params={"cursor": encoded}), 422)
        assert problem["errors"][0]["field"] == "query.cursor"
    is_problem(client.get("/experiments", params={"cursor": "%%%not-base64"}), 422)


def test_duplicate_keys_nul_and_lone_surrogates_are_422_naming_the_field(
    client: TestClient,
) -> None:
    body = (
        b'{"epochs": 1, "epochs": 10000, "name": "a\\u0000b", "dataset": {"name": "digits",'
        b' "name": "mnist"}, "model": {"kind": "mlp"}, "extra": ["\\udc00"]}'
    )
    before = len(client.get("/experiments", params={"limit": 200}).json()["items"])
    response = client.post(
        "/experiments", content=body, headers={"content-type": "application/json"}
    )
    fields = [e["field"] for e in is_problem(response, 422)["errors"]]
    assert {"epochs", "name", "dataset.name", "extra.0"} <= set(fields)
    assert len(client.get("/experiments", params={"limit": 200}).json()["items"]) == before
    # A well-formed surrogate pair is a character like any other.
    named = client.post("/experiments", json={**SPEC, "name": "\U0001f600"})
    assert named.status_code == 202 and named.json()["name"] == "\U0001f600"


def test_oversized_bodies_are_413_whether_declared_or_streamed(client: TestClient) -> None:
    big = b"{" + b" " * (2 << 20) + b"}"
    declared = client.post(
        "/experiments", content=big, headers={"content-type": "application/json"}
    )
    assert "exceeds" in is_problem(declared, 413)["detail"]

    def chunks() -> Iterator[bytes]:
        for _ in range(200):
            yield b" " * 10_000

    streamed = client.post(
        "/experiments", content=chunks(), headers={"content-type": "application/json"}
    )
    is_problem(streamed, 413)
    is_problem(client.post("/suites", content=big), 413)


def test_405_names_the_allowed_methods_and_head_options_work(client: TestClient) -> None:
    response = client.delete("/suites")
    assert is_problem(response, 405) and response.headers["allow"]
    assert "POST" in response.headers["allow"].split(", ")
    assert set(client.put("/presets").headers["allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}
    head = client.head("/presets")
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) == len(client.get("/presets").content)
    options = client.options("/experiments")
    assert options.status_code == 204 and {"GET", "POST"} <= set(
        options.headers["allow"].split(", ")
    )
    assert client.options("/no-such-path").status_code == 404
    assert client.head(f"/experiments/{uuid.uuid4()}").status_code == 404

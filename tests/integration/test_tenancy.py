"""Many users on one server: tokens, owners and admins, on every route of the OpenAPI document.

A real migrated PostgreSQL; owner A's experiment is trained (through the use case the worker
calls) so that every route has something to answer about for A, and nothing for B.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from weightspace_app.usecases.execution import execute
from weightspace_app.usecases.tokens import create_token, revoke_token

from scripts.openapi import DOCUMENT
from tests.integration.test_stranger import SPEC, is_problem, settings_for
from weightspace_service.app import create_app

pytestmark = pytest.mark.integration

OPENAPI = json.loads(DOCUMENT.read_text())
PUBLIC = {("/health", "get")}


@dataclass
class Tenants:
    client: TestClient
    alice: dict[str, str]
    bob: dict[str, str]
    admin: dict[str, str]
    revoked: dict[str, str]
    experiment: str  # alice's, trained
    suite: str  # alice's


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture(scope="module")
def tenants(
    tmp_path_factory: pytest.TempPathFactory, migrated_postgres_url: str
) -> Iterator[Tenants]:
    home = tmp_path_factory.mktemp("tenancy")
    app = create_app(settings_for(home, migrated_postgres_url, auth="tokens"))
    with TestClient(app) as client:
        with app.state.sessions() as session:
            alice = bearer(create_token(session, "alice")[1])
            bob = bearer(create_token(session, "bob")[1])
            admin = bearer(create_token(session, "root", admin=True)[1])
            gone, secret = create_token(session, "alice", label="leaked")
            revoke_token(session, gone.id)
        response = client.post("/experiments", json=SPEC, headers=alice)
        assert response.status_code == 202, response.text
        experiment = response.json()["id"]
        status = execute(app.state.sessions, app.state.store, uuid.UUID(experiment), device="cpu")
        assert status == "succeeded"
        suite = client.post("/suites", json={"preset": "quick", "dataset": "digits"}, headers=alice)
        assert suite.status_code == 202, suite.text
        yield Tenants(client, alice, bob, admin, bearer(secret), experiment, suite.json()["id"])


def operations() -> list[tuple[str, str]]:
    return [(path, method) for path, ops in OPENAPI["paths"].items() for method in ops]


def concrete(path: str, tenants: Tenants) -> str:
    values = {
        "experiment_id": tenants.experiment,
        "suite_id": tenants.suite,
        "run": "0",
        "epoch": "0",
        "name": "index.html",
        "figure": "pca",
        "analysis_id": "00000000-0000-0000-0000-000000000000",
    }
    for name in re.findall(r"{(\w+)}", path):
        assert name in values, f"the test does not know path parameter {name!r} of {path}"
    return path.format(**values)


def body_for(path: str, method: str) -> Any:
    """A valid body for each route that takes one, so that only ownership decides the answer."""
    if method == "patch":
        return {"tags": ["mine"], "note": "a note"}
    if method == "put" and path.endswith("/landscape"):
        return {"train_loss": [[0.5, 0.4], [0.3, 0.2]], "train_examples": 10}
    if method != "post":
        return None
    if path.endswith("/verify"):
        return {}  # every run, to the final epoch
    return {"preset": "quick", "dataset": "digits"} if path == "/suites" else SPEC


def call(tenants: Tenants, path: str, method: str, headers: dict[str, str]) -> Any:
    return tenants.client.request(
        method.upper(),
        concrete(path, tenants),
        json=body_for(path, method),
        headers=headers,
        follow_redirects=False,
    )


@pytest.mark.parametrize(("path", "method"), operations())
def test_no_bad_or_revoked_token_is_401_on_every_route(
    tenants: Tenants, path: str, method: str
) -> None:
    if (path, method) in PUBLIC:
        assert call(tenants, path, method, {}).status_code == 200
        return
    if path == "/ready":  # answers anyone, with details for the authenticated only
        return
    for headers, invalid in (
        ({}, False),
        (bearer("ws_not-a-token"), True),
        (tenants.revoked, True),
        ({"Authorization": "Basic YWxpY2U6c2VjcmV0"}, False),
    ):
        response = call(tenants, path, method, headers)
        is_problem(response, 401)
        challenge = response.headers["www-authenticate"]
        assert challenge.startswith("Bearer")
        assert ('error="invalid_token"' in challenge) == invalid


@pytest.mark.parametrize(("path", "method"), operations())
def test_another_owners_ids_are_404_on_every_route(
    tenants: Tenants, path: str, method: str
) -> None:
    if "{experiment_id}" not in path and "{suite_id}" not in path:
        return
    destructive = method == "delete" or path.endswith(("/cancel", "/retry"))
    if not destructive:
        mine = call(tenants, path, method, tenants.alice)
        assert mine.status_code != 404, (path, mine.text)
    before = tenants.client.get(f"/experiments/{tenants.experiment}", headers=tenants.alice)
    theirs = call(tenants, path, method, tenants.bob)
    problem = is_problem(theirs, 404)
    # Exactly what an id that exists nowhere gets: the answer tells B nothing about A's ids.
    nowhere = str(uuid.uuid4())
    stranger = Tenants(**{**tenants.__dict__, "experiment": nowhere, "suite": nowhere})
    unknown = is_problem(call(stranger, path, method, tenants.bob), 404)

    def anonymised(doc: dict[str, Any], *ids: str) -> str:
        text = json.dumps({k: v for k, v in doc.items() if k != "request_id"})
        for item in ids:
            text = text.replace(item, "ID")
        return text

    assert anonymised(problem, tenants.experiment, tenants.suite) == anonymised(unknown, nowhere)
    after = tenants.client.get(f"/experiments/{tenants.experiment}", headers=tenants.alice)
    assert after.json() == before.json()  # B's attempt changed nothing
    if not destructive:
        assert call(tenants, path, method, tenants.admin).status_code == mine.status_code


def test_lists_are_per_owner_and_admin_sees_all(tenants: Tenants) -> None:
    client = tenants.client

    def ids(headers: dict[str, str]) -> set[str]:
        return {e["id"] for e in client.get("/experiments", headers=headers).json()["items"]}

    assert tenants.experiment in ids(tenants.alice)
    assert tenants.experiment not in ids(tenants.bob)
    assert tenants.experiment in ids(tenants.admin)


def test_ready_details_only_for_the_authenticated(tenants: Tenants) -> None:
    anonymous = tenants.client.get("/ready").json()
    assert set(anonymous["checks"].values()) <= {"ok", "unavailable"}
    assert tenants.client.get("/ready", headers=tenants.bob).json()["checks"].keys() == (
        anonymous["checks"].keys()
    )


def test_host_header_is_checked_when_hosts_are_listed(
    tmp_path: Path, migrated_postgres_url: str
) -> None:
    settings = settings_for(tmp_path, migrated_postgres_url, allowed_hosts=["127.0.0.1"])
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as client:
        assert client.get("/health").status_code == 200
        rebound = client.get("/experiments", headers={"Host": "attacker.example:8000"})
        assert "Host" in is_problem(rebound, 400)["detail"]


def test_workers_are_listed_to_admins_only(tenants: Tenants) -> None:
    client = tenants.client
    for owner in (tenants.alice, tenants.bob):
        assert "admin" in is_problem(client.get("/workers", headers=owner), 403)["detail"]
    listed = client.get("/workers", headers=tenants.admin)
    assert listed.status_code == 200 and isinstance(listed.json()["items"], list)

"""Limits: the worst-case spec, data-set sizes, owner quotas and the per-token submission rate,
each refused with a 4xx problem naming the limit; on PostgreSQL, with tokens."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from weightspace_app.infra.settings import Settings
from weightspace_app.usecases.tokens import create_token

from tests.integration.test_stranger import SPEC, is_problem, settings_for
from weightspace_service.app import create_app

pytestmark = pytest.mark.integration

WORST = {  # the spec from the issue: ~640k snapshots of an 8 x 8192 MLP
    "dataset": {"name": "mnist"},
    "model": {"kind": "mlp", "hidden": [8192] * 8},
    "replicas": 64,
    "init": "shared",
    "pretrain_epochs": 10_000,
    "epochs": 10_000,
    "snapshot_every": 1,
    "batch_size": 1,
}
FEW_SNAPSHOTS = {"snapshot_every": 10_000}


def app_with(tmp_path: Path, url: str, **limits: Any) -> Any:
    return create_app(settings_for(tmp_path, url, auth="tokens", **limits))


def token(app: Any, owner: str) -> dict[str, str]:
    with app.state.sessions() as session:
        return {"Authorization": f"Bearer {create_token(session, owner)[1]}"}


@pytest.fixture
def client(tmp_path: Path, migrated_postgres_url: str) -> Iterator[TestClient]:
    with TestClient(app_with(tmp_path, migrated_postgres_url)) as test_client:
        yield test_client


def test_defaults_are_sane() -> None:
    settings = Settings()
    assert settings.max_body_bytes <= 2**20 < 2 * 2**20
    assert settings.submit_rate <= 600 and settings.max_active_experiments <= 1000


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({}, "body"),  # as sent: too many snapshots (weightspace.spec.MAX_SNAPSHOTS)
        (FEW_SNAPSHOTS, "epochs"),  # then its compute budget
        ({**FEW_SNAPSHOTS, "replicas": 1, "pretrain_epochs": 0, "epochs": 2}, "model"),
    ],
)
def test_the_worst_case_spec_is_refused_naming_the_limit(
    client: TestClient, change: dict[str, Any], field: str
) -> None:
    headers = token(client.app, "greedy")
    problem = is_problem(
        client.post("/experiments", json={**WORST, **change}, headers=headers), 422
    )
    assert problem["errors"][0]["field"] == field
    assert (
        "snapshots" in problem["detail"]
        if field == "body"
        else "WEIGHTSPACE_MAX_" in problem["detail"]
    )


@pytest.mark.parametrize(
    ("dataset", "field"),
    [
        ({"name": "digits", "train_size": 5000}, "dataset.train_size"),
        ({"name": "digits", "test_size": 451}, "dataset.test_size"),
    ],
)
def test_data_set_sizes_are_checked_at_submit(
    client: TestClient, dataset: dict[str, Any], field: str
) -> None:
    response = client.post(
        "/experiments", json={**SPEC, "dataset": dataset}, headers=token(client.app, "a")
    )
    assert is_problem(response, 422)["errors"][0]["field"] == field


def test_owner_quotas_on_experiments_in_flight_and_stored_bytes(
    tmp_path: Path, migrated_postgres_url: str
) -> None:
    app = app_with(tmp_path, migrated_postgres_url, max_active_experiments=2)
    with TestClient(app) as client:
        alice, bob = token(app, f"alice-{uuid.uuid4().hex[:6]}"), token(app, "bob-q")
        for _ in range(2):
            assert client.post("/experiments", json=SPEC, headers=alice).status_code == 202
        over = is_problem(client.post("/experiments", json=SPEC, headers=alice), 429)
        assert "WEIGHTSPACE_MAX_ACTIVE_EXPERIMENTS" in over["detail"]
        suite = client.post("/suites", json={"preset": "quick", "dataset": "digits"}, headers=alice)
        is_problem(suite, 429)
        assert client.post("/experiments", json=SPEC, headers=bob).status_code == 202
        # Cancelling frees a slot.
        first = client.get("/experiments", headers=alice).json()["items"][0]["id"]
        client.post(f"/experiments/{first}/cancel", headers=alice)
        assert client.post("/experiments", json=SPEC, headers=alice).status_code == 202
    app = app_with(tmp_path, migrated_postgres_url, max_stored_bytes=1000)
    with TestClient(app) as client:
        big = {**SPEC, "model": {"kind": "mlp", "hidden": [64]}}
        problem = is_problem(client.post("/experiments", json=big, headers=token(app, "c")), 429)
        assert "WEIGHTSPACE_MAX_STORED_BYTES" in problem["detail"]


def test_submission_rate_per_token_holds_across_api_processes(
    tmp_path: Path, migrated_postgres_url: str
) -> None:
    limits = {"submit_rate": 3, "submit_rate_window": 3600}
    first = app_with(tmp_path / "a", migrated_postgres_url, **limits)
    second = app_with(tmp_path / "b", migrated_postgres_url, **limits)
    with TestClient(first) as one, TestClient(second) as two:
        alice = token(first, f"rate-{uuid.uuid4().hex[:6]}")
        other = token(first, f"rate-{uuid.uuid4().hex[:6]}")
        key = {"Idempotency-Key": str(uuid.uuid4())}
        assert one.post("/experiments", json=SPEC, headers={**alice, **key}).status_code == 202
        # A replay of an idempotent submit costs nothing.
        assert one.post("/experiments", json=SPEC, headers={**alice, **key}).status_code == 202
        assert two.post("/experiments", json=SPEC, headers=alice).status_code == 202
        assert one.post("/experiments", json=SPEC, headers=alice).status_code == 202
        limited = two.post("/experiments", json=SPEC, headers=alice)
        problem = is_problem(limited, 429)
        assert "WEIGHTSPACE_SUBMIT_RATE" in problem["detail"]
        assert 1 <= int(limited.headers["retry-after"]) <= 3600
        assert one.post("/experiments", json=SPEC, headers=other).status_code == 202

"""Cancel, delete and retry over HTTP, on PostgreSQL and a SeaweedFS bucket (listed to prove that
deleting leaves no object behind). Training runs through the use case the Celery task calls, in a
thread, so that a cancel can land while a run is in progress."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from weightspace_app.infra.db import Experiment
from weightspace_app.infra.s3 import S3Store
from weightspace_app.infra.settings import Settings
from weightspace_app.usecases.execution import execute

from tests.conftest import SeaweedFS
from tests.integration.test_stranger import is_problem
from weightspace_service.app import create_app

pytestmark = pytest.mark.integration

SPEC: dict[str, Any] = {
    "seed": 5,
    "dataset": {"name": "digits", "train_size": 200, "test_size": 50},
    "model": {"kind": "mlp", "hidden": [8]},
    "epochs": 3,
    "batch_size": 50,
    "replicas": 2,
}
LONG = {**SPEC, "epochs": 400, "batch_size": 10}


@pytest.fixture
def client(
    tmp_path: Path, migrated_postgres_url: str, seaweedfs: SeaweedFS, s3_store: S3Store
) -> Iterator[TestClient]:
    settings = Settings(
        home=tmp_path,
        database_url=migrated_postgres_url,
        broker_url=f"sqla+sqlite:///{tmp_path / 'broker.db'}",
        storage_url=f"s3://{s3_store.bucket}",
        s3_endpoint_url=seaweedfs.endpoint_url,
        s3_access_key=seaweedfs.access_key,
        s3_secret_key=seaweedfs.secret_key,
        s3_region=seaweedfs.region,
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def keys(store: S3Store, prefix: str = "") -> list[str]:
    pages = store.client.get_paginator("list_objects_v2").paginate(
        Bucket=store.bucket, Prefix=prefix
    )
    return [item["Key"] for page in pages for item in page.get("Contents", ())]


def run(client: TestClient, experiment_id: str) -> str:
    state = client.app.state  # type: ignore[attr-defined]
    return execute(state.sessions, state.store, uuid.UUID(experiment_id), device="cpu")


def submit(client: TestClient, spec: dict[str, Any]) -> str:
    response = client.post("/experiments", json=spec)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def final_metrics(client: TestClient, experiment_id: str) -> list[dict[str, float]]:
    """Each run's metrics at its final snapshot (file hashes differ: they name the experiment)."""
    found = []
    for run in (0, 1):
        items = client.get(f"/experiments/{experiment_id}/runs/{run}/snapshots").json()["items"]
        found.append(items[-1]["metrics"])
    return found


def test_delete_removes_rows_and_every_object(client: TestClient, s3_store: S3Store) -> None:
    experiment_id = submit(client, SPEC)
    assert run(client, experiment_id) == "succeeded"
    client.get(f"/experiments/{experiment_id}/pca")  # caches a Gram matrix in the store too
    prefix = f"experiments/{uuid.UUID(experiment_id).hex}/"
    assert keys(s3_store, prefix), "training stored objects"
    response = client.delete(f"/experiments/{experiment_id}")
    assert response.status_code == 204, response.text
    assert keys(s3_store, prefix) == []
    is_problem(client.get(f"/experiments/{experiment_id}"), 404)
    is_problem(client.delete(f"/experiments/{experiment_id}"), 404)
    assert experiment_id not in {e["id"] for e in client.get("/experiments").json()["items"]}


def test_cancel_queued_then_retry_resumes_to_the_same_result(client: TestClient) -> None:
    experiment_id = submit(client, SPEC)
    cancelled = client.post(f"/experiments/{experiment_id}/cancel")
    assert cancelled.status_code == 200
    body = cancelled.json()
    assert body["status"] == "cancelled" and body["finished_at"] is not None
    assert {r["status"] for r in body["runs"]} == {"cancelled"}
    assert run(client, experiment_id) == "cancelled"  # the task, delivered late, does nothing
    retried = client.post(f"/experiments/{experiment_id}/retry")
    assert retried.status_code == 202 and retried.json()["status"] == "queued"
    assert retried.headers["location"] == f"/experiments/{experiment_id}"
    assert run(client, experiment_id) == "succeeded"
    is_problem(client.post(f"/experiments/{experiment_id}/retry"), 409)
    is_problem(client.post(f"/experiments/{experiment_id}/cancel"), 409)
    reference = submit(client, SPEC)
    assert run(client, reference) == "succeeded"
    assert final_metrics(client, experiment_id) == final_metrics(client, reference)


def test_cancel_running_stops_within_seconds_keeps_snapshots_and_retry_continues(
    client: TestClient, s3_store: S3Store
) -> None:
    experiment_id = submit(client, LONG)
    outcome: list[str] = []
    worker = threading.Thread(target=lambda: outcome.append(run(client, experiment_id)))
    worker.start()
    deadline = time.monotonic() + 120
    while not client.get(f"/experiments/{experiment_id}/runs/0/snapshots").json()["items"]:
        assert time.monotonic() < deadline and worker.is_alive()
        time.sleep(0.2)
    cancelled_at = time.monotonic()
    assert client.post(f"/experiments/{experiment_id}/cancel").json()["status"] == "cancelled"
    # Until the worker has stopped, nothing may delete what it is still writing.
    early = client.delete(f"/experiments/{experiment_id}")
    assert early.status_code in (204, 409)
    assert early.status_code == 409 or not worker.is_alive()
    worker.join(timeout=60)
    assert not worker.is_alive() and outcome == ["cancelled"]
    assert time.monotonic() - cancelled_at < 30
    stopped = client.get(f"/experiments/{experiment_id}").json()
    assert stopped["status"] == "cancelled" and stopped["finished_at"] is not None
    kept = client.get(f"/experiments/{experiment_id}/runs/0/snapshots").json()["items"]
    assert kept, "snapshots taken before the cancel are kept"
    progress = max(r["epoch"] or 0 for r in stopped["runs"])
    assert 0 < progress < LONG["epochs"]

    assert client.post(f"/experiments/{experiment_id}/retry").status_code == 202
    sessions = client.app.state.sessions  # type: ignore[attr-defined]
    with sessions() as session:  # the retry continues: it does not start over
        experiment = session.get_one(Experiment, uuid.UUID(experiment_id))
        assert any(run.state_key for run in experiment.runs)
    # Cancel again (from the queue) and delete: every object goes.
    client.post(f"/experiments/{experiment_id}/cancel")
    assert client.delete(f"/experiments/{experiment_id}").status_code == 204
    assert keys(s3_store, f"experiments/{uuid.UUID(experiment_id).hex}/") == []


def test_failed_experiments_retry_and_running_ones_refuse_delete(client: TestClient) -> None:
    experiment_id = submit(client, SPEC)
    sessions = client.app.state.sessions  # type: ignore[attr-defined]
    with sessions() as session:  # as the worker leaves a run that raised
        experiment = session.get_one(Experiment, uuid.UUID(experiment_id))
        experiment.status, experiment.error = "running", None
        session.commit()
    is_problem(client.delete(f"/experiments/{experiment_id}"), 409)
    is_problem(client.post(f"/experiments/{experiment_id}/retry"), 409)
    with sessions() as session:
        experiment = session.get_one(Experiment, uuid.UUID(experiment_id))
        experiment.status, experiment.error = "failed", "RuntimeError: worker blew up"
        experiment.finished_at = experiment.created_at
        session.commit()
    retried = client.post(f"/experiments/{experiment_id}/retry").json()
    assert retried["status"] == "queued" and retried.get("error") is None
    assert run(client, experiment_id) == "succeeded"


def test_suite_cancel_retry_and_delete(client: TestClient, s3_store: S3Store) -> None:
    created = client.post("/suites", json={"preset": "quick", "dataset": "digits"})
    assert created.status_code == 202, created.text
    suite_id = created.json()["id"]
    cancelled = client.post(f"/suites/{suite_id}/cancel").json()
    assert {e["experiment"]["status"] for e in cancelled["experiments"]} == {"cancelled"}
    retried = client.post(f"/suites/{suite_id}/retry")
    assert retried.status_code == 202
    assert {e["experiment"]["status"] for e in retried.json()["experiments"]} == {"queued"}
    first = retried.json()["experiments"][0]["experiment"]["id"]
    is_problem(client.delete(f"/experiments/{first}"), 409)  # belongs to the suite
    client.post(f"/suites/{suite_id}/cancel")
    s3_store.put(f"suites/{uuid.UUID(suite_id).hex}/report/index.html", b"<html></html>")
    assert client.delete(f"/suites/{suite_id}").status_code == 204
    assert keys(s3_store) == []
    is_problem(client.get(f"/suites/{suite_id}"), 404)
    is_problem(client.get(f"/experiments/{first}"), 404)

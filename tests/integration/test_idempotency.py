"""Idempotent submits against a real uvicorn server on PostgreSQL, with real concurrency: many
threads, one key, one experiment (a unique constraint decides, not a lock in Python)."""

from __future__ import annotations

import secrets
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from weightspace_app.infra.db import Experiment, IdempotencyKey, Suite

from tests.integration.serving import serving
from tests.integration.test_stranger import SPEC, is_problem, settings_for
from weightspace_service.app import create_app

pytestmark = pytest.mark.integration

CONCURRENT = 50


@pytest.fixture
def server(tmp_path: Path, migrated_postgres_url: str) -> Iterator[tuple[str, object]]:
    app = create_app(settings_for(tmp_path, migrated_postgres_url))
    with serving(app) as url:
        yield url, app


def count(app: object, model: type[Experiment] | type[Suite], name: str | None = None) -> int:
    sessions = app.state.sessions  # type: ignore[attr-defined]
    query = select(func.count()).select_from(model)
    if name is not None and model is Experiment:
        query = query.where(Experiment.name == name)
    with sessions() as session:
        return int(session.scalar(query) or 0)


def test_concurrent_identical_submits_create_one_experiment(
    server: tuple[str, object],
) -> None:
    url, app = server
    name = f"race-{secrets.token_hex(4)}"
    spec = {**SPEC, "name": name}
    key = str(uuid.uuid4())
    barrier = threading.Barrier(CONCURRENT)

    def submit(_: int) -> httpx.Response:
        with httpx.Client(base_url=url, timeout=60) as client:
            barrier.wait()
            return client.post("/experiments", json=spec, headers={"Idempotency-Key": key})

    with ThreadPoolExecutor(CONCURRENT) as pool:
        responses = list(pool.map(submit, range(CONCURRENT)))
    assert {r.status_code for r in responses} == {202}, {r.text for r in responses}
    ids = {r.json()["id"] for r in responses}
    assert len(ids) == 1
    assert {r.headers["location"] for r in responses} == {f"/experiments/{ids.pop()}"}
    assert count(app, Experiment, name) == 1


def test_same_key_replays_different_body_is_422_and_expired_keys_are_free(
    server: tuple[str, object],
) -> None:
    url, app = server
    name = f"replay-{secrets.token_hex(4)}"
    spec = {**SPEC, "name": name}
    key = str(uuid.uuid4())
    with httpx.Client(base_url=url) as client:
        first = client.post("/experiments", json=spec, headers={"Idempotency-Key": key})
        # Key order and spacing do not make a different request.
        reordered = dict(reversed(list(spec.items())))
        again = client.post("/experiments", json=reordered, headers={"Idempotency-Key": key})
        assert first.status_code == again.status_code == 202
        assert first.json()["id"] == again.json()["id"]
        assert first.headers["location"] == again.headers["location"]
        changed = client.post(
            "/experiments", json={**spec, "epochs": 2}, headers={"Idempotency-Key": key}
        )
        problem = is_problem(changed, 422)
        assert problem["errors"][0]["field"] == "header.Idempotency-Key"
        other_queue = client.post(
            "/experiments", json=spec, params={"queue": "gpu"}, headers={"Idempotency-Key": key}
        )
        is_problem(other_queue, 422)
        as_suite = client.post(
            "/suites",
            json={"preset": "quick", "dataset": "digits"},
            headers={"Idempotency-Key": key},
        )
        is_problem(as_suite, 422)
        assert count(app, Experiment, name) == 1
        # Without a key, each submit is new.
        client.post("/experiments", json=spec)
        assert count(app, Experiment, name) == 2

        sessions = app.state.sessions  # type: ignore[attr-defined]
        with sessions() as session:
            row = session.get_one(IdempotencyKey, ("anonymous", key))
            row.created_at -= timedelta(hours=25)
            session.commit()
        later = client.post("/experiments", json=spec, headers={"Idempotency-Key": key})
        assert later.status_code == 202 and later.json()["id"] != first.json()["id"]
        assert count(app, Experiment, name) == 3

        for bad in (b"", b"x" * 201, b"tab\there", "é".encode()):
            response = client.post("/experiments", json=spec, headers={"Idempotency-Key": bad})
            assert response.status_code == 422, (bad, response.text)


def test_suites_are_idempotent_too(server: tuple[str, object]) -> None:
    url, app = server
    key = str(uuid.uuid4())
    body = {"preset": "quick", "dataset": "digits"}
    with httpx.Client(base_url=url) as client:
        before = count(app, Suite)
        first = client.post("/suites", json=body, headers={"Idempotency-Key": key})
        again = client.post("/suites", json=body, headers={"Idempotency-Key": key})
        assert first.status_code == again.status_code == 202, (first.text, again.text)
        assert first.headers["location"] == again.headers["location"]
        assert count(app, Suite) == before + 1
        # Deleting the suite frees its key (the key's row goes with it).
        client.post(f"/suites/{first.json()['id']}/cancel")
        assert client.delete(f"/suites/{first.json()['id']}").status_code == 204
        third = client.post("/suites", json=body, headers={"Idempotency-Key": key})
        assert third.status_code == 202 and third.json()["id"] != first.json()["id"]


def test_the_client_sends_a_key_and_manages_the_lifecycle(server: tuple[str, object]) -> None:
    from weightspace_client import WeightspaceClient
    from weightspace_client.client import ApiError

    url, app = server
    name = f"client-{secrets.token_hex(4)}"
    with WeightspaceClient(url) as client:
        key = str(uuid.uuid4())
        first = client.submit({**SPEC, "name": name}, idempotency_key=key)
        assert client.submit({**SPEC, "name": name}, idempotency_key=key)["id"] == first["id"]
        second = client.submit({**SPEC, "name": name})  # a fresh key: a new experiment
        assert second["id"] != first["id"] and count(app, Experiment, name) == 2
        assert client.cancel(first["id"])["status"] == "cancelled"
        assert client.retry(first["id"])["status"] == "queued"
        client.cancel(first["id"])
        client.delete(first["id"])
        with pytest.raises(ApiError) as missing:
            client.get_experiment(first["id"])
        assert missing.value.status == 404

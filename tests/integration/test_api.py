"""The HTTP API in-process, on a real migrated PostgreSQL, a real broker and a local store.

Training runs through the same use case the Celery task calls (``experiments.execute``), in this
process, so the analysis endpoints answer about real snapshots.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from scipy.spatial.distance import pdist, squareform
from sklearn.decomposition import PCA
from sqlalchemy import event, func, select
from weightspace_app.infra.db import Experiment, OutboxEntry
from weightspace_app.infra.maintenance import celery_publisher
from weightspace_app.infra.queue import TRAIN_TASK, make_celery
from weightspace_app.infra.settings import Settings
from weightspace_app.usecases.execution import execute

from weightspace.snapshots import decode_snapshot
from weightspace_service.app import create_app
from weightspace_service.params import MAX_SELECTED_EPOCHS

pytestmark = pytest.mark.integration

SPEC = {
    "name": "api-test",
    "seed": 3,
    "dataset": {"name": "digits", "train_size": 200, "test_size": 100},
    "model": {"kind": "mlp", "hidden": [8]},
    "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9},
    "epochs": 4,
    "batch_size": 50,
    "snapshot_every": 1,
    "replicas": 3,
    "init": "shared",
}


def make_settings(tmp_path: Path, database_url: str, broker_url: str | None = None) -> Settings:
    return Settings(
        home=tmp_path,
        database_url=database_url,
        broker_url=broker_url or f"sqla+sqlite:///{tmp_path / 'broker.db'}",
        storage_url=f"file://{tmp_path / 'snapshots'}",
    )


@pytest.fixture
def client(tmp_path: Path, migrated_postgres_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(tmp_path, migrated_postgres_url))) as test_client:
        yield test_client


def train(client: TestClient, spec: dict = SPEC) -> str:
    response = client.post("/experiments", json=spec)
    assert response.status_code == 202, response.text
    experiment_id = response.json()["id"]
    state = client.app.state  # type: ignore[attr-defined]
    assert (
        execute(state.sessions, state.store, uuid.UUID(experiment_id), device="cpu") == "succeeded"
    )
    return experiment_id


def test_submit_answers_202_with_location_and_recorded_seeds(client: TestClient) -> None:
    response = client.post("/experiments", json=SPEC, params={"queue": "cpu"})
    assert response.status_code == 202
    body = response.json()
    assert response.headers["location"] == f"/experiments/{body['id']}"
    assert body["status"] == "queued" and body["queue"] == "cpu"
    assert [r["run"] for r in body["runs"]] == [0, 1, 2]
    assert len({r["seeds"]["init"] for r in body["runs"]}) == 1  # init: shared
    assert len({r["seeds"]["data"] for r in body["runs"]}) == 3
    assert client.get(body["links"]["self"]).json()["spec"]["epochs"] == 4


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"epochs": 0}, "epochs"),
        ({"model": {"kind": "mlp", "hidden": []}}, "model.hidden"),
        ({"optimizer": {"name": "sgd", "lr": -1}}, "optimizer.lr"),
        ({"dataset": {"name": "imagenet"}}, "dataset.name"),
        ({"surprise": True}, "surprise"),
    ],
)
def test_bad_spec_is_a_problem_naming_the_field_and_writes_nothing(
    client: TestClient, change: dict, field: str
) -> None:
    sessions = client.app.state.sessions  # type: ignore[attr-defined]
    with sessions() as session:
        before = session.scalar(select(func.count()).select_from(Experiment))
    response = client.post("/experiments", json={**SPEC, **change})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 422 and field in [e["field"] for e in problem["errors"]]
    assert field in problem["detail"]
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Experiment)) == before


def test_unreachable_queue_keeps_the_task_in_the_outbox_until_it_is_back(
    tmp_path: Path, migrated_postgres_url: str
) -> None:
    settings = make_settings(tmp_path, migrated_postgres_url, broker_url="redis://127.0.0.1:9/0")
    with TestClient(create_app(settings)) as client:
        state = client.app.state  # type: ignore[attr-defined]
        response = client.post("/experiments", json=SPEC)
        assert response.status_code == 202  # committed with its outbox entry: nothing is lost
        experiment_id = uuid.UUID(response.json()["id"])

        def entry() -> OutboxEntry:
            with state.sessions() as session:
                return session.scalars(
                    select(OutboxEntry).where(OutboxEntry.experiment_id == experiment_id)
                ).one()

        deadline = time.monotonic() + 30
        while entry().attempts == 0 and time.monotonic() < deadline:  # the relay thread tries
            time.sleep(0.1)
        failed = entry()
        assert failed.sent_at is None and failed.attempts >= 1 and failed.last_error
        assert "127.0.0.1" not in failed.last_error  # named, without the address
        ready = client.get("/ready")
        assert ready.status_code == 503 and ready.json()["checks"]["broker"] != "ok"
        # The broker is back: the relay publishes the pending task and marks it sent.
        working = make_celery(make_settings(tmp_path, migrated_postgres_url))
        state.maintenance.relay.publish = celery_publisher(working)
        state.maintenance.wake()
        deadline = time.monotonic() + 30
        while entry().sent_at is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert entry().sent_at is not None
        with working.connection_for_read() as connection:
            queue = connection.SimpleQueue("cpu")
            message = queue.get(timeout=5)
            assert message.headers["task"] == TRAIN_TASK
            assert str(experiment_id) in message.headers["argsrepr"]
            message.ack()
            queue.close()


def test_health_and_ready(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200, ready.text
    checks = ready.json()["checks"]
    assert {k: checks.pop(k) for k in ("database", "broker", "store")} == dict.fromkeys(
        ("database", "broker", "store"), "ok"
    )
    assert checks["store_space"].startswith("ok (") and checks["store_space"].endswith("free)")


def test_ready_answers_within_its_deadline_and_says_when_the_store_is_full(
    tmp_path: Path, migrated_postgres_url: str
) -> None:
    with socket.socket() as black_hole:  # accepts connections, never answers
        black_hole.bind(("127.0.0.1", 0))
        black_hole.listen(16)
        broker = f"redis://127.0.0.1:{black_hole.getsockname()[1]}/0"
        settings = make_settings(tmp_path, migrated_postgres_url, broker_url=broker)
        settings = settings.model_copy(
            update={"ready_deadline": 1.0, "store_min_free_bytes": 1 << 62, "publish_timeout": 1.0}
        )
        with TestClient(create_app(settings)) as client:
            started = time.monotonic()
            ready = client.get("/ready")
            assert time.monotonic() - started < 4
            checks = ready.json()["checks"]
            assert ready.status_code == 503 and "no answer within 1 s" in checks["broker"]
            assert "full" in checks["store_space"] and checks["database"] == "ok"
            # Probes do not pile up: many callers, one round, answered from the cache.
            started = time.monotonic()
            assert all(client.get("/ready").status_code == 503 for _ in range(20))
            assert time.monotonic() - started < 6
            # Submitting does not hang on the black hole either: the outbox keeps the task.
            started = time.monotonic()
            assert client.post("/experiments", json=SPEC).status_code == 202
            assert time.monotonic() - started < 3


def test_not_found_and_bad_ids_are_problems(client: TestClient) -> None:
    missing = client.get(f"/experiments/{uuid.uuid4()}")
    assert (
        missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
    )
    bad = client.get("/experiments/not-a-uuid")
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "path.experiment_id"


def test_analysis_before_any_snapshot_is_409(client: TestClient) -> None:
    experiment_id = client.post("/experiments", json=SPEC).json()["id"]
    for path in ("pca", "distances", "trajectory"):
        response = client.get(f"/experiments/{experiment_id}/{path}")
        assert response.status_code == 409, path
        assert "snapshot" in response.json()["detail"]


def download_all(client: TestClient, experiment_id: str) -> dict[tuple[int, int], np.ndarray]:
    vectors = {}
    for run in range(3):
        page = client.get(f"/experiments/{experiment_id}/runs/{run}/snapshots").json()
        assert [s["epoch"] for s in page["items"]] == [0, 1, 2, 3, 4]
        for item in page["items"]:
            response = client.get(item["href"])
            assert response.status_code == 200
            assert (
                hashlib.sha256(response.content).hexdigest()
                == item["sha256"]
                == response.headers["x-checksum-sha256"]
            )
            vectors[run, item["epoch"]] = decode_snapshot(response.content, item["sha256"]).params
    return vectors


def test_analysis_agrees_with_sklearn_and_scipy(client: TestClient) -> None:
    experiment_id = train(client)
    experiment = client.get(f"/experiments/{experiment_id}").json()
    assert experiment["status"] == "succeeded"
    assert all(
        r["status"] == "succeeded" and r["epoch"] == 4 and r["metrics"] for r in experiment["runs"]
    )
    vectors = download_all(client, experiment_id)
    keys = sorted(vectors)
    matrix = np.stack([vectors[k] for k in keys]).astype(np.float64)

    pca = client.get(f"/experiments/{experiment_id}/pca", params={"components": 3}).json()
    assert pca["complete"] is True and pca["components"] == 3
    assert [(p["run"], p["epoch"]) for p in pca["points"]] == keys
    reference = PCA(n_components=3, svd_solver="full").fit(matrix)
    ours = np.array([p["coordinates"] for p in pca["points"]])
    theirs = reference.transform(matrix)
    signs = np.sign((ours * theirs).sum(axis=0))
    np.testing.assert_allclose(ours, theirs * signs, rtol=1e-6, atol=1e-6 * np.abs(theirs).max())
    np.testing.assert_allclose(
        pca["explained_variance_ratio"], reference.explained_variance_ratio_, rtol=1e-6
    )
    ratios = pca["explained_variance_ratio"]
    assert all(a >= b for a, b in itertools.pairwise(ratios)) and sum(ratios) <= 1 + 1e-12

    only = client.get(
        f"/experiments/{experiment_id}/pca", params={"runs": [1], "epochs": [0, 2, 4]}
    ).json()
    assert [(p["run"], p["epoch"]) for p in only["points"]] == [(1, 0), (1, 2), (1, 4)]

    distances = client.get(f"/experiments/{experiment_id}/distances").json()
    assert distances["epoch"] == 4 and distances["runs"] == [0, 1, 2]
    finals = np.stack([vectors[r, 4] for r in range(3)]).astype(np.float64)
    np.testing.assert_allclose(
        distances["distances"], squareform(pdist(finals)), rtol=1e-6, atol=1e-9
    )
    np.testing.assert_allclose(
        distances["distance_from_origin"], np.linalg.norm(finals, axis=1), rtol=1e-6
    )
    starts = np.stack([vectors[r, 0] for r in range(3)]).astype(np.float64)
    np.testing.assert_allclose(
        distances["distance_from_init"], np.linalg.norm(finals - starts, axis=1), rtol=1e-6
    )
    np.testing.assert_allclose(
        distances["cosine_similarity"],
        1 - squareform(pdist(finals, "cosine")),
        rtol=1e-6,
        atol=1e-9,
    )
    at2 = client.get(f"/experiments/{experiment_id}/distances", params={"epoch": 2}).json()
    assert at2["epoch"] == 2

    trajectory = client.get(f"/experiments/{experiment_id}/trajectory").json()
    run0 = trajectory["runs"][0]["points"]
    path = np.stack([vectors[0, e] for e in range(5)]).astype(np.float64)
    steps = np.linalg.norm(np.diff(path, axis=0), axis=1)
    np.testing.assert_allclose([p["step_length"] for p in run0], [0, *steps], rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(run0[-1]["path_length"], steps.sum(), rtol=1e-6)
    np.testing.assert_allclose(
        run0[-1]["displacement"], np.linalg.norm(path[-1] - path[0]), rtol=1e-6
    )
    assert 0 < run0[-1]["straightness"] <= 1
    assert run0[-1]["metrics"]["test_accuracy"] > 0.3


def test_analysis_queries_out_of_range_are_named(client: TestClient) -> None:
    experiment_id = train(client, {**SPEC, "epochs": 2})
    runs = client.get(f"/experiments/{experiment_id}/pca", params={"runs": [7]})
    assert runs.status_code == 422 and runs.json()["errors"][0]["field"] == "query.runs"
    epoch = client.get(f"/experiments/{experiment_id}/distances", params={"epoch": 99})
    assert epoch.status_code == 422 and epoch.json()["errors"][0]["field"] == "query.epoch"
    components = client.get(f"/experiments/{experiment_id}/pca", params={"components": 64})
    assert components.status_code == 409 and "at least 65 snapshots" in components.json()["detail"]
    negative = client.get(f"/experiments/{experiment_id}/pca", params={"components": 0})
    assert (
        negative.status_code == 422 and negative.json()["errors"][0]["field"] == "query.components"
    )
    at_limit = [0, 1, 2] * (MAX_SELECTED_EPOCHS // 3) + [0] * (MAX_SELECTED_EPOCHS % 3)
    pca = client.get(f"/experiments/{experiment_id}/pca", params={"epochs": at_limit})
    assert pca.status_code == 200 and {p["epoch"] for p in pca.json()["points"]} == {0, 1, 2}
    over = client.get(f"/experiments/{experiment_id}/pca", params={"epochs": [*at_limit, 1]})
    assert over.status_code == 422 and over.json()["errors"][0]["field"] == "query.epochs"


def test_gram_is_cached_until_a_snapshot_arrives(client: TestClient, tmp_path: Path) -> None:
    experiment_id = train(client, {**SPEC, "epochs": 2})
    first = client.get(f"/experiments/{experiment_id}/pca").json()
    store = client.app.state.store  # type: ignore[attr-defined]
    prefix = f"experiments/{uuid.UUID(experiment_id).hex}/"
    meta = json.loads(store.get(f"{prefix}gram/latest.json"))
    assert len(meta["entries"]) == 9 and store.exists(f"{prefix}gram/{meta['fingerprint']}.npy")
    # A repeated call does no heavy work: it answers without reading any snapshot (from memory,
    # then from the store's .npy once the process has forgotten it).
    for run in (0, 1, 2):
        for epoch in (0, 1, 2):
            store.delete_prefix(f"{prefix}runs/{run:04d}/epoch-{epoch:06d}")
    assert client.get(f"/experiments/{experiment_id}/pca").json() == first
    client.app.state.analyzer._memory.clear()  # type: ignore[attr-defined]
    assert client.get(f"/experiments/{experiment_id}/pca").json() == first
    assert client.get(f"/experiments/{experiment_id}/distances").status_code == 200


def test_running_experiments_answer_with_what_exists(client: TestClient) -> None:
    experiment_id = train(client, {**SPEC, "epochs": 2})
    with client.app.state.sessions() as session:  # type: ignore[attr-defined]
        session.get(Experiment, uuid.UUID(experiment_id)).status = "running"
        session.commit()
    assert client.get(f"/experiments/{experiment_id}/pca").json()["complete"] is False


def test_snapshot_pages_and_missing_snapshot(client: TestClient) -> None:
    experiment_id = train(client, {**SPEC, "replicas": 1, "epochs": 4})
    first = client.get(f"/experiments/{experiment_id}/runs/0/snapshots", params={"limit": 2}).json()
    second = client.get(
        f"/experiments/{experiment_id}/runs/0/snapshots",
        params={"limit": 2, "cursor": first["next_cursor"]},
    ).json()
    third = client.get(
        f"/experiments/{experiment_id}/runs/0/snapshots",
        params={"limit": 2, "cursor": second["next_cursor"]},
    ).json()
    assert [s["epoch"] for s in first["items"] + second["items"] + third["items"]] == [
        0,
        1,
        2,
        3,
        4,
    ]
    assert third["next_cursor"] is None
    assert client.get(f"/experiments/{experiment_id}/runs/0/snapshots/99").status_code == 404
    assert client.get(f"/experiments/{experiment_id}/runs/5/snapshots").status_code == 404
    bad = client.get(f"/experiments/{experiment_id}/runs/0/snapshots", params={"cursor": "%%%"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "query.cursor"


def test_experiment_pages(tmp_path: Path, fresh_postgres_url: str) -> None:
    from weightspace_app.infra.migrate import upgrade

    upgrade(fresh_postgres_url)
    with TestClient(create_app(make_settings(tmp_path, fresh_postgres_url))) as client:
        created = [client.post("/experiments", json=SPEC).json()["id"] for _ in range(5)]
        seen, cursor = [], None
        while True:
            params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
            page = client.get("/experiments", params=params).json()
            seen += [e["id"] for e in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == created[::-1]
        assert client.get("/experiments", params={"status": "succeeded"}).json()["items"] == []


def test_experiment_list_uses_a_constant_number_of_statements(client: TestClient) -> None:
    engine = client.app.state.engine  # type: ignore[attr-defined]
    statements: list[str] = []

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        if threading.current_thread().name != "maintenance":  # the outbox relay's own queries
            statements.append(statement)

    def listing() -> int:
        statements.clear()
        event.listen(engine, "before_cursor_execute", count)
        try:
            assert client.get("/experiments", params={"limit": 50}).status_code == 200
        finally:
            event.remove(engine, "before_cursor_execute", count)
        return len(statements)

    client.post("/experiments", json=SPEC)
    few = listing()
    for _ in range(6):
        client.post("/experiments", json=SPEC)
    assert listing() == few <= 3


def test_damaged_snapshots_are_named_and_the_rest_still_answers(client: TestClient) -> None:
    experiment_id = train(client, {**SPEC, "epochs": 2})
    store = client.app.state.store  # type: ignore[attr-defined]
    root = Path(store.root)
    prefix = f"experiments/{uuid.UUID(experiment_id).hex}/runs"
    corrupt = root / prefix / "0001" / "epoch-000002.safetensors"
    data = bytearray(corrupt.read_bytes())
    data[-3] ^= 0x10  # one flipped bit in the parameters
    corrupt.write_bytes(bytes(data))
    (root / prefix / "0002" / "epoch-000001.safetensors").unlink()

    download = client.get(f"/experiments/{experiment_id}/runs/1/snapshots/2")
    assert download.status_code == 409
    assert download.headers["content-type"] == "application/problem+json"
    assert "run 1 at epoch 2" in download.json()["detail"]
    missing = client.get(f"/experiments/{experiment_id}/runs/2/snapshots/1")
    assert missing.status_code == 409 and "missing" in missing.json()["detail"]

    pca = client.get(f"/experiments/{experiment_id}/pca")
    assert pca.status_code == 409 and "run 1 at epoch 2" in pca.json()["detail"]
    assert client.get(f"/experiments/{experiment_id}/pca", params={"runs": [0]}).status_code == 200
    assert (
        client.get(f"/experiments/{experiment_id}/distances", params={"epoch": 1}).status_code
        == 409
    )
    marked = client.get(f"/experiments/{experiment_id}").json()["damaged_snapshots"]
    assert [(d["run"], d["epoch"]) for d in marked] == [(1, 2), (2, 1)]
    intact = client.get(f"/experiments/{experiment_id}/runs/0/snapshots/2")
    assert intact.status_code == 200
    assert hashlib.sha256(intact.content).hexdigest() == intact.headers["x-checksum-sha256"]


def test_database_down_is_a_503_on_a_connection_that_stays_open(tmp_path: Path) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    settings = make_settings(tmp_path, f"postgresql+psycopg://postgres@127.0.0.1:{port}/none")
    with TestClient(create_app(settings)) as client:
        for path in (
            "/experiments",
            f"/experiments/{uuid.uuid4()}",
            f"/experiments/{uuid.uuid4()}/pca",
        ):
            response = client.get(path)
            assert response.status_code == 503, (path, response.text)
            assert response.headers["content-type"] == "application/problem+json"
            assert response.headers.get("connection") != "close"
            assert "127.0.0.1" not in response.text

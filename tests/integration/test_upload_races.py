"""Uploads on PostgreSQL: uploaded bytes count against the owner's quota, and an upload racing
``complete`` is serialised by the experiment's row lock (in before completion, or 409)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from safetensors.numpy import save as np_save
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from weightspace_app.access import Conflict, Principal
from weightspace_app.infra.db import Experiment, SnapshotRecord, make_engine, make_sessionmaker
from weightspace_app.usecases import uploads
from weightspace_app.usecases.experiments import get_locked
from weightspace_app.usecases.tokens import create_token

from tests.integration.test_stranger import is_problem, settings_for
from weightspace.snapshots import LocalStore, snapshot_key
from weightspace.spec import UploadSpec
from weightspace_service.app import create_app

pytestmark = pytest.mark.integration
OWNER = Principal("uploader")


def state_dict(size: int, seed: int = 0) -> bytes:
    return np_save({"w": np.random.default_rng(seed).normal(size=size).astype(np.float32)})


def test_uploaded_bytes_count_against_the_stored_bytes_quota(
    tmp_path: Path, migrated_postgres_url: str
) -> None:
    settings = settings_for(tmp_path, migrated_postgres_url, auth="tokens", max_stored_bytes=10_000)
    with TestClient(create_app(settings)) as client:
        with client.app.state.sessions() as session:  # type: ignore[attr-defined]
            headers = {"Authorization": f"Bearer {create_token(session, 'quota-owner')[1]}"}
        made = client.post("/experiments", json={"source": "upload"}, headers=headers)
        assert made.status_code == 201, made.text
        base = f"/experiments/{made.json()['id']}/runs/0/snapshots"
        first = client.put(f"{base}/0", content=state_dict(1500), headers=headers)
        assert first.status_code == 201, first.text
        assert 5_000 < first.json()["size"] <= 10_000  # one fits, two do not
        # Replacing a snapshot by one of the same size adds nothing: allowed.
        again = client.put(f"{base}/0", content=state_dict(1500, seed=1), headers=headers)
        assert again.status_code == 200, again.text
        over = client.put(f"{base}/1", content=state_dict(1500), headers=headers)
        problem = is_problem(over, 429)
        assert "WEIGHTSPACE_MAX_STORED_BYTES" in problem["detail"]
        snapshots = client.get(f"{base}", headers=headers).json()["items"]
        assert [s["epoch"] for s in snapshots] == [0]  # nothing of the refused one was kept


class GatedStore(LocalStore):
    """A local store whose writes wait for ``gate`` (an upload held mid-transaction)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.gate = threading.Event()
        self.reached = threading.Event()

    def put_stream(self, key: str, chunks: Iterable[bytes]) -> int:
        self.reached.set()
        assert self.gate.wait(30)
        return super().put_stream(key, chunks)


@pytest.fixture
def sessions(migrated_postgres_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(migrated_postgres_url)
    yield make_sessionmaker(engine)
    engine.dispose()


def opened(sessions: sessionmaker[Session], store: LocalStore) -> uuid.UUID:
    """An uploaded experiment of one run with a snapshot at epoch 0."""
    with sessions() as session:
        experiment = uploads.new_experiment(OWNER, UploadSpec(source="upload", replicas=1), "cpu")
        session.add(experiment)
        session.commit()
        uploads.put(
            session, store, OWNER, experiment.id, 0, 0, state_dict(10), metrics={}, sha256=None
        )
        return experiment.id


def put_in_thread(
    sessions: sessionmaker[Session], store: LocalStore, experiment_id: uuid.UUID, epoch: int
) -> tuple[threading.Thread, list[object]]:
    outcome: list[object] = []

    def upload() -> None:
        with sessions() as session:
            try:
                record, _ = uploads.put(
                    session,
                    store,
                    OWNER,
                    experiment_id,
                    0,
                    epoch,
                    state_dict(10),
                    metrics={},
                    sha256=None,
                )
                outcome.append(record.epoch)
            except Conflict as error:
                outcome.append(error)

    thread = threading.Thread(target=upload)
    thread.start()
    return thread, outcome


def test_complete_waits_for_an_upload_in_flight(
    tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    experiment_id = opened(sessions, LocalStore(tmp_path))
    store = GatedStore(tmp_path)
    uploading, outcome = put_in_thread(sessions, store, experiment_id, 5)
    assert store.reached.wait(30)  # the upload holds the row, writing its object
    completed: list[Experiment] = []

    def complete() -> None:
        with sessions() as session:
            completed.append(uploads.complete(session, OWNER, experiment_id))

    completing = threading.Thread(target=complete)
    completing.start()
    completing.join(1.0)
    assert completing.is_alive()  # waits for the upload's transaction
    store.gate.set()
    uploading.join(30)
    completing.join(30)
    assert outcome == [5]
    assert completed[0].status == "succeeded" and completed[0].runs[0].final_epoch == 5


def test_an_upload_that_loses_the_race_to_complete_is_refused(
    tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    store = LocalStore(tmp_path)
    experiment_id = opened(sessions, store)
    with sessions() as holder:
        get_locked(holder, OWNER, Experiment, experiment_id)  # "complete" holds the row...
        uploading, outcome = put_in_thread(sessions, store, experiment_id, 7)
        uploading.join(1.0)
        assert uploading.is_alive()  # ...so the upload waits for it
        uploads.complete(holder, OWNER, experiment_id)  # commits: the lock is released
    uploading.join(30)
    assert len(outcome) == 1 and isinstance(outcome[0], Conflict)
    assert "succeeded" in str(outcome[0])
    with sessions() as session:
        epochs = session.scalars(
            select(SnapshotRecord.epoch).where(SnapshotRecord.experiment_id == experiment_id)
        ).all()
    assert epochs == [0]
    assert not store.exists(snapshot_key(experiment_id, 0, 7))

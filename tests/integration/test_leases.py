"""Leases, the reaper and the outbox: nothing stays stuck, nothing is trained twice at once."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker
from weightspace_app.access import ANONYMOUS
from weightspace_app.infra import leases, outbox
from weightspace_app.infra.db import (
    Experiment,
    OutboxEntry,
    Run,
    Suite,
    make_engine,
    make_sessionmaker,
    utcnow,
)
from weightspace_app.infra.faults import Transient
from weightspace_app.infra.migrate import upgrade
from weightspace_app.infra.settings import Settings
from weightspace_app.usecases import execution
from weightspace_app.usecases.submission import Submitter, submit_experiment, submit_suite

from weightspace.snapshots import LocalStore, StoreUnavailable, decode_snapshot
from weightspace.spec import ExperimentSpec

#: Submissions as the API makes them, to the cpu queue, under the default settings.
CPU = Submitter(ANONYMOUS, "cpu", Settings())

pytestmark = pytest.mark.integration

SPEC = ExperimentSpec.model_validate(
    {
        "seed": 4,
        "dataset": {"name": "digits", "train_size": 200, "test_size": 50},
        "model": {"kind": "mlp", "hidden": [8]},
        "epochs": 40,
        "snapshot_every": 10,
        "replicas": 1,
    }
)


@pytest.fixture(params=["sqlite", "postgresql"])
def sessions(request: pytest.FixtureRequest) -> sessionmaker[Session]:
    url = (
        request.getfixturevalue("sqlite_url")
        if request.param == "sqlite"
        else request.getfixturevalue("fresh_postgres_url")
    )
    upgrade(url)
    return make_sessionmaker(make_engine(url))


def entries(sessions: sessionmaker[Session], experiment_id: uuid.UUID) -> list[OutboxEntry]:
    with sessions() as session:
        return list(
            session.scalars(select(OutboxEntry).where(OutboxEntry.experiment_id == experiment_id))
        )


def submitted(sessions: sessionmaker[Session]) -> uuid.UUID:
    with sessions() as session:
        return submit_experiment(session, CPU, SPEC).item.id


def mark_sent(sessions: sessionmaker[Session], experiment_id: uuid.UUID, ago: float) -> None:
    with sessions() as session:
        session.execute(
            update(OutboxEntry)
            .where(OutboxEntry.experiment_id == experiment_id)
            .values(
                sent_at=utcnow() - timedelta(seconds=ago),
                created_at=utcnow() - timedelta(seconds=ago),
            )
        )
        session.commit()


def test_submission_commits_the_experiment_with_its_outbox_entry(
    sessions: sessionmaker[Session],
) -> None:
    experiment_id = submitted(sessions)
    [entry] = entries(sessions, experiment_id)
    assert entry.args == [str(experiment_id)] and entry.sent_at is None


def test_the_reaper_requeues_a_dead_workers_experiment_once(
    sessions: sessionmaker[Session],
) -> None:
    experiment_id = submitted(sessions)
    mark_sent(sessions, experiment_id, ago=100)
    with sessions() as session:
        experiment = session.get_one(Experiment, experiment_id)
        experiment.status = "running"
        assert leases.claim(experiment.runs, "worker-a", seconds=60)
        session.commit()
    # Alive: nothing to do.
    assert leases.reap(sessions, lease_seconds=60, requeue_after=600) == []
    with sessions() as session:  # the worker died: its lease ran out
        session.execute(
            update(Run)
            .where(Run.experiment_id == experiment_id)
            .values(lease_expires_at=utcnow() - timedelta(seconds=1))
        )
        session.commit()
    assert leases.reap(sessions, lease_seconds=60, requeue_after=600) == [experiment_id]
    assert leases.reap(sessions, lease_seconds=60, requeue_after=600) == []  # once
    assert [e.sent_at is None for e in entries(sessions, experiment_id)] == [False, True]


def test_the_reaper_requeues_a_queued_experiment_whose_task_was_lost(
    sessions: sessionmaker[Session],
) -> None:
    experiment_id = submitted(sessions)
    assert leases.reap(sessions, lease_seconds=60, requeue_after=600) == []  # still pending
    mark_sent(sessions, experiment_id, ago=10)
    assert leases.reap(sessions, lease_seconds=60, requeue_after=600) == []  # recently sent
    mark_sent(sessions, experiment_id, ago=700)
    assert leases.reap(sessions, lease_seconds=60, requeue_after=600) == [experiment_id]


def test_the_relay_marks_what_it_published_and_keeps_what_failed(
    sessions: sessionmaker[Session],
) -> None:
    first, second = submitted(sessions), submitted(sessions)
    published: list[tuple[str, list[object], str]] = []
    down = True

    def publish(task: str, args: list[object], queue: str) -> None:
        if down:
            raise ConnectionRefusedError("broker down at amqp://guest:secret@10.0.0.1:5672//")
        published.append((task, args, queue))

    relay = outbox.Relay(sessions, publish, timeout=2)
    assert relay.relay_once() == 0
    failed = entries(sessions, first)[0]
    assert failed.attempts == 1 and failed.sent_at is None
    assert "secret" not in (failed.last_error or "") and "10.0.0.1" not in (failed.last_error or "")
    down = False
    assert relay.relay_once() == 2
    assert [p[1] for p in published] == [[str(first)], [str(second)]]
    assert relay.relay_once() == 0


def test_a_black_holed_publish_is_abandoned_after_the_timeout(
    sessions: sessionmaker[Session],
) -> None:
    experiment_id = submitted(sessions)
    release = threading.Event()
    relay = outbox.Relay(sessions, lambda *_: release.wait(30) and None, timeout=0.5)
    started = time.monotonic()
    assert relay.relay_once() == 0
    assert time.monotonic() - started < 5
    assert "did not answer" in (entries(sessions, experiment_id)[0].last_error or "")
    assert relay.relay_once() == 0  # no second publish while the first still hangs
    release.set()


def test_a_worker_that_lost_its_lease_stops_without_writing(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    experiment_id = submitted(sessions)
    store = LocalStore(tmp_path)
    stolen = threading.Event()

    def steal() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with sessions() as session:
                run = session.get_one(Run, (experiment_id, 0))
                if run.lease_owner is not None and run.epoch is not None:
                    run.lease_owner = "worker-b"  # another worker took it over
                    session.commit()
                    stolen.set()
                    return
            time.sleep(0.01)

    thief = threading.Thread(target=steal)
    thief.start()
    status = execution.execute(sessions, store, experiment_id, device="cpu", lease_seconds=0.6)
    thief.join()
    assert stolen.is_set() and status == "lost"
    with sessions() as session:
        run = session.get_one(Run, (experiment_id, 0))
        assert run.lease_owner == "worker-b" and run.status == "running"


def test_deleting_a_suite_deletes_its_experiments(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        suite = submit_suite(session, CPU, "quick", "digits").item
        suite_id = suite.id
    with sessions() as session:
        session.delete(session.get_one(Suite, suite_id))
        session.commit()
        assert session.scalar(select(func.count()).select_from(Experiment)) == 0
        assert session.scalar(select(func.count()).select_from(OutboxEntry)) == 0


class FlakyStore(LocalStore):
    """Unreachable for the first ``failures`` writes of states (a store restarting)."""

    def __init__(self, root: Path, failures: int) -> None:
        super().__init__(root)
        self.failures = failures

    def put(self, key: str, data: bytes) -> None:
        if "state-000020" in key and self.failures > 0:
            self.failures -= 1
            raise StoreUnavailable("the snapshot store is unreachable (EndpointConnectionError)")
        super().put(key, data)


def test_a_store_outage_is_retried_and_the_run_resumes_bitwise(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    reference = submitted(sessions)
    clean = LocalStore(tmp_path / "clean")
    assert execution.execute(sessions, clean, reference, device="cpu") == "succeeded"
    experiment_id = submitted(sessions)
    flaky = FlakyStore(tmp_path / "flaky", failures=1)
    with pytest.raises(Transient, match="unreachable"):
        execution.execute(sessions, flaky, experiment_id, device="cpu")
    with sessions() as session:  # not failed: released for the retry
        experiment = session.get_one(Experiment, experiment_id)
        assert experiment.status == "running" and experiment.runs[0].lease_owner is None
    assert execution.execute(sessions, flaky, experiment_id, device="cpu") == "succeeded"
    for epoch in SPEC.snapshot_epochs():
        a = clean.get(f"experiments/{reference.hex}/runs/0000/epoch-{epoch:06d}.safetensors")
        b = flaky.get(f"experiments/{experiment_id.hex}/runs/0000/epoch-{epoch:06d}.safetensors")
        assert get_params(a) == get_params(b)


def get_params(data: bytes) -> bytes:
    return decode_snapshot(data).params.tobytes()


def test_a_permanent_error_is_named_without_internal_addresses(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    class Broken(LocalStore):
        def put(self, key: str, data: bytes) -> None:
            raise PermissionError("denied writing to s3://admin:hunter2@10.1.2.3:8333/bucket")

    experiment_id = submitted(sessions)
    with pytest.raises(PermissionError):
        execution.execute(sessions, Broken(tmp_path), experiment_id, device="cpu")
    with sessions() as session:
        experiment = session.get_one(Experiment, experiment_id)
        assert experiment.status == "failed" and experiment.error is not None
        assert experiment.error.startswith("PermissionError: denied writing")
        assert "hunter2" not in experiment.error and "10.1.2.3" not in experiment.error


def test_a_suite_commits_with_all_its_tasks(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        suite = submit_suite(session, CPU, "quick", "digits").item
        ids = {e.id for e in suite.experiments}
    with sessions() as session:
        pending = session.scalars(select(OutboxEntry.experiment_id)).all()
    assert len(ids) >= 4 and sorted(pending) == sorted(ids)  # one task per experiment

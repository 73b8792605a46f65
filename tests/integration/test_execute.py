"""The training use case (what the Celery task runs) survives dying at the worst moments."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from weightspace_app.access import ANONYMOUS
from weightspace_app.infra.db import Experiment, SnapshotRecord, make_engine, make_sessionmaker
from weightspace_app.infra.migrate import upgrade
from weightspace_app.infra.settings import Settings
from weightspace_app.usecases.execution import execute
from weightspace_app.usecases.submission import Submitter, submit_experiment

from weightspace.snapshots import LocalStore, get_snapshot
from weightspace.spec import ExperimentSpec

#: Submissions as the API makes them, to the cpu queue, under the default settings.
CPU = Submitter(ANONYMOUS, "cpu", Settings())

pytestmark = pytest.mark.integration

SPEC = ExperimentSpec.model_validate(
    {
        "seed": 2,
        "dataset": {"name": "digits", "train_size": 300, "test_size": 100},
        "model": {"kind": "mlp", "hidden": [16]},
        "optimizer": {"name": "adam", "lr": 0.01},
        "epochs": 6,
        "dropout": 0.3,
        "snapshot_every": 2,
        "replicas": 2,
    }
)


class Died(BaseException):
    """Stands for SIGKILL: not an Exception, so nothing in the use case handles it."""


class DyingStore(LocalStore):
    """Dies right after writing the object whose key contains ``fatal`` (once)."""

    def __init__(self, root: Path, fatal: str) -> None:
        super().__init__(root)
        self.fatal: str | None = fatal

    def put(self, key: str, data: bytes) -> None:
        super().put(key, data)
        if self.fatal is not None and self.fatal in key:
            self.fatal = None
            raise Died(key)


@pytest.fixture
def sessions(sqlite_url: str):  # type: ignore[no-untyped-def]
    upgrade(sqlite_url)
    return make_sessionmaker(make_engine(sqlite_url))


def trajectory(sessions, store, experiment_id: uuid.UUID) -> dict[tuple[int, int], bytes]:  # type: ignore[no-untyped-def]
    with sessions() as session:
        records = session.query(SnapshotRecord).filter_by(experiment_id=experiment_id).all()
        return {
            (r.run, r.epoch): get_snapshot(store, r.key, r.sha256).params.tobytes() for r in records
        }


@pytest.mark.parametrize("fatal", ["runs/0000/epoch-000002", "runs/0001/state-000004"])
def test_dying_after_a_write_then_running_again_gives_the_uninterrupted_trajectory(
    sessions, tmp_path: Path, fatal: str
) -> None:  # type: ignore[no-untyped-def]
    reference_store = LocalStore(tmp_path / "reference")
    with sessions() as session:
        reference = submit_experiment(session, CPU, SPEC).item.id
    assert execute(sessions, reference_store, reference, device="cpu") == "succeeded"

    store = DyingStore(tmp_path / "store", fatal)
    with sessions() as session:
        experiment_id = submit_experiment(session, CPU, SPEC).item.id
    with pytest.raises(Died):
        execute(sessions, store, experiment_id, device="cpu", lease_seconds=1.0)
    with sessions() as session:
        assert (
            session.get(Experiment, experiment_id).status == "running"
        )  # as a killed worker leaves it
    # While the dead worker's lease lasts, nobody else trains its runs; once it has run out,
    # the re-enqueued task (the same call again) resumes them.
    assert execute(sessions, store, experiment_id, device="cpu") == "busy"
    time.sleep(1.2)
    assert execute(sessions, store, experiment_id, device="cpu") == "succeeded"

    expected = trajectory(sessions, reference_store, reference)
    assert sorted(expected) == [(r, e) for r in (0, 1) for e in (0, 2, 4, 6)]
    assert trajectory(sessions, store, experiment_id) == expected
    # Only each run's latest resume state is kept.
    states = sorted(p.name for p in (tmp_path / "store").rglob("state-*"))
    assert states == ["state-000006.safetensors", "state-000006.safetensors"]


def test_a_finished_experiment_is_not_trained_again(sessions, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store = LocalStore(tmp_path / "store")
    with sessions() as session:
        experiment_id = submit_experiment(session, CPU, SPEC).item.id
    assert execute(sessions, store, experiment_id, device="cpu") == "succeeded"
    before = trajectory(sessions, store, experiment_id)
    assert execute(sessions, store, experiment_id, device="cpu") == "succeeded"
    assert trajectory(sessions, store, experiment_id) == before


def test_a_failing_experiment_records_its_error(sessions, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    spec = SPEC.model_copy(update={"dataset": SPEC.dataset.model_copy(update={"name": "mnist"})})
    with sessions() as session:
        experiment_id = submit_experiment(session, CPU, spec).item.id
    with pytest.raises(FileNotFoundError):
        execute(
            sessions, LocalStore(tmp_path / "s"), experiment_id, device="cpu", data_dir=tmp_path
        )
    with sessions() as session:
        experiment = session.get(Experiment, experiment_id)
        assert experiment.status == "failed" and "train-images-idx3-ubyte" in experiment.error
        assert {r.status for r in experiment.runs} == {"failed"}

"""One logging configuration: request ids in the access log and problem documents; every line a
training task logs names its experiment (and run, per epoch)."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from weightspace_app.access import ANONYMOUS
from weightspace_app.infra import logs
from weightspace_app.infra.db import make_engine, make_sessionmaker
from weightspace_app.infra.migrate import upgrade
from weightspace_app.infra.settings import Settings
from weightspace_app.usecases import experiments as usecases
from weightspace_app.usecases.execution import execute

from weightspace.snapshots import LocalStore
from weightspace.spec import ExperimentSpec
from weightspace_service.app import create_app

pytestmark = pytest.mark.integration


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Configure logging as the API and worker do (JSON lines), into a buffer."""
    logs.configure("INFO", "json")
    root = logging.getLogger()
    handler = next(h for h in root.handlers if h.get_name() == "weightspace")
    buffer = io.StringIO()
    handler.setStream(buffer)  # type: ignore[attr-defined]
    try:
        yield buffer
    finally:
        root.removeHandler(handler)


def lines(buffer: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.startswith("{")]


def test_context_fields_reach_every_line_and_unknown_fields_are_refused(
    captured: io.StringIO,
) -> None:
    log = logging.getLogger("weightspace.test")
    with logs.context(experiment_id="e1"), logs.context(run=3):
        log.info("inside")
    log.info("outside")
    inside, outside = lines(captured)[-2:]
    assert (inside["experiment_id"], inside["run"], inside["message"]) == ("e1", 3, "inside")
    assert "experiment_id" not in outside and "run" not in outside
    with pytest.raises(ValueError, match="unknown"), logs.context(colour="red"):
        pass


def test_request_ids_in_header_problem_and_access_log(
    tmp_path: Path, sqlite_url: str, captured: io.StringIO
) -> None:
    settings = Settings(
        home=tmp_path,
        database_url=sqlite_url,
        broker_url=f"sqla+sqlite:///{tmp_path / 'broker.db'}",
        storage_url=f"file://{tmp_path / 'snapshots'}",
    )
    upgrade(sqlite_url)
    with TestClient(create_app(settings)) as client:
        missing = f"/experiments/{uuid.uuid4()}"
        given = client.get(missing, headers={"X-Request-ID": "trace-42"})
        assert given.status_code == 404
        assert given.headers["x-request-id"] == "trace-42"
        assert given.json()["request_id"] == "trace-42"
        # An id that could forge log lines is replaced by a fresh one.
        forged = client.get(missing, headers={"X-Request-ID": "a b\nINFO fake"})
        fresh = forged.headers["x-request-id"]
        assert fresh != "a b\nINFO fake" and len(fresh) == 32
        assert forged.json()["request_id"] == fresh
    access = [e for e in lines(captured) if e["logger"] == "weightspace_service.access"]
    assert any(e["request_id"] == "trace-42" and " 404 " in str(e["message"]) for e in access)
    assert any(e["request_id"] == fresh for e in access)


def test_every_line_of_a_training_names_its_experiment(
    tmp_path: Path, sqlite_url: str, captured: io.StringIO
) -> None:
    upgrade(sqlite_url)
    sessions = make_sessionmaker(make_engine(sqlite_url))
    spec = ExperimentSpec.model_validate(
        {
            "seed": 1,
            "dataset": {"name": "digits", "train_size": 100, "test_size": 50},
            "model": {"kind": "mlp", "hidden": [8]},
            "epochs": 2,
            "replicas": 2,
        }
    )
    with sessions() as session:
        experiment = usecases.new_experiment(ANONYMOUS, spec, "cpu")
        session.add(experiment)
        session.commit()
        experiment_id = experiment.id
    with logs.context(experiment_id=str(experiment_id)):  # as the Celery task does
        status = execute(sessions, LocalStore(tmp_path / "store"), experiment_id, device="cpu")
    assert status == "succeeded"
    ours = [e for e in lines(captured) if str(e["logger"]).startswith("weightspace")]
    assert ours and all(e.get("experiment_id") == str(experiment_id) for e in ours)
    epochs = [e for e in ours if str(e["message"]).startswith("epoch ")]
    assert {(e["run"], e["epoch"]) for e in epochs} == {(r, k) for r in (0, 1) for k in (1, 2)}

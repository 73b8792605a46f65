"""The worker registry with a real Celery worker process: it advertises itself and its data
sets, the API checks submissions against it, and its entry expires when it is gone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from weightspace_app.infra import workers
from weightspace_app.infra.db import make_engine, make_sessionmaker, utcnow
from weightspace_app.infra.migrate import upgrade
from weightspace_app.usecases.tokens import create_token

from tests.integration.test_stranger import SPEC, is_problem, settings_for
from weightspace.data import default_data_dir, find_idx_files
from weightspace_service.app import create_app

pytestmark = [pytest.mark.integration, pytest.mark.slow]
TTL = 3.0
MNIST = {**SPEC, "dataset": {"name": "mnist", "train_size": 100, "test_size": 50}}


def wait_for(condition: Callable[[], Any], timeout: float, what: str, log: Path) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.3)
    pytest.fail(f"timed out waiting for {what}; worker log:\n{log.read_text()[-4000:]}")


@pytest.fixture
def database(fresh_postgres_url: str) -> str:
    upgrade(fresh_postgres_url)  # a database of its own: no other test's workers
    return fresh_postgres_url


@pytest.fixture
def worker(tmp_path: Path, database: str) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """A worker of queue `cpu` whose data directory is empty: it can serve digits only."""
    log = tmp_path / "worker.log"
    env = {
        **os.environ,
        "WEIGHTSPACE_HOME": str(tmp_path),
        "WEIGHTSPACE_DATABASE_URL": database,
        "WEIGHTSPACE_BROKER_URL": f"sqla+sqlite:///{tmp_path / 'broker.db'}",
        "WEIGHTSPACE_STORAGE_URL": f"file://{tmp_path / 'snapshots'}",
        "WEIGHTSPACE_DATA_DIR": str(tmp_path / "no-data"),
        "WEIGHTSPACE_WORKER_TTL": str(TTL),
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "weightspace_worker",
                "--queues",
                "cpu",
                "--hostname",
                "lacks-mnist@%h",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process, log
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(30)


def test_a_worker_advertises_and_submissions_are_checked_against_it(
    tmp_path: Path, database: str, worker: tuple[subprocess.Popen[bytes], Path]
) -> None:
    process, log = worker
    try:
        find_idx_files("mnist", default_data_dir())
    except FileNotFoundError:
        pytest.skip("the API process needs MNIST under WEIGHTSPACE_DATA_DIR for this test")
    settings = settings_for(
        tmp_path / "api", database, auth="tokens", worker_ttl=TTL, data_dir=default_data_dir()
    )
    with TestClient(create_app(settings)) as client:
        with client.app.state.sessions() as session:  # type: ignore[attr-defined]
            admin = {"Authorization": f"Bearer {create_token(session, 'root', admin=True)[1]}"}
            user = {"Authorization": f"Bearer {create_token(session, 'alice')[1]}"}

        def listed() -> list[dict[str, Any]]:
            response = client.get("/workers", headers=admin)
            assert response.status_code == 200, response.text
            return response.json()["items"]  # type: ignore[no-any-return]

        [entry] = wait_for(listed, 120, "the worker to advertise itself", log)
        assert entry["id"].startswith("lacks-mnist@") and entry["queues"] == ["cpu"]
        assert entry["device"] == "cpu" and entry["torch_version"]
        # digits ships with scikit-learn; Fashion-MNIST may be installed system-wide (Debian's
        # dataset-fashion-mnist); MNIST is kept from this worker.
        assert entry["datasets"]["digits"] == [1347, 450] and "mnist" not in entry["datasets"]
        assert set(entry["datasets"]) <= {"digits", "fashion-mnist"}
        is_problem(client.get("/workers", headers=user), 403)

        # The API process has MNIST, but the only worker of queue cpu does not: 422.
        lacking = is_problem(client.post("/experiments", json=MNIST, headers=user), 422)
        assert lacking["errors"][0]["field"] == "dataset.name"
        assert entry["id"] in lacking["detail"]
        too_big = {**SPEC, "dataset": {"name": "digits", "train_size": 1348}}
        assert client.post("/experiments", json=too_big, headers=user).status_code == 422
        suite = {"preset": "quick", "dataset": "mnist"}
        refused = is_problem(client.post("/suites", json=suite, headers=user), 422)
        assert refused["errors"][0]["field"] == "dataset"

        served = client.post("/experiments", json=SPEC, headers=user)
        assert served.status_code == 202, served.text
        assert served.json()["warnings"] == []
        # No worker consumes queue gpu: accepted, with a warning.
        waiting = client.post("/experiments?queue=gpu", json=MNIST, headers=user)
        assert waiting.status_code == 202, waiting.text
        [warning] = waiting.json()["warnings"]
        assert "`gpu`" in warning and "queued" in warning
        read_back = client.get(f"/experiments/{waiting.json()['id']}", headers=user)
        assert read_back.json()["warnings"] == []

        # The worker dies without a word: its entry expires after the TTL.
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(30)
        wait_for(lambda: listed() == [], TTL * 4, "the dead worker's entry to expire", log)
        # With no live worker on cpu, the API's own data stands in: MNIST is accepted, waiting.
        later = client.post("/experiments", json=MNIST, headers=user)
        assert later.status_code == 202 and later.json()["warnings"]


def test_entries_expire_after_the_ttl_and_a_clean_stop_removes_them(database: str) -> None:
    sessions = make_sessionmaker(make_engine(database))
    advert = workers.Advert("w@h", ("cpu",), "cpu", "x86_64", "2.0", {"digits": (1347, 450)})
    then = utcnow() - timedelta(seconds=10)
    workers.advertise(sessions, advert, now=then)
    with sessions() as session:
        assert [w.id for w in workers.live_workers(session, 30)] == ["w@h"]
        assert workers.live_workers(session, 5) == []  # ten seconds without a heartbeat
    workers.advertise(sessions, advert)  # a heartbeat renews it
    with sessions() as session:
        [live] = workers.live_workers(session, 5)
        assert live.datasets == {"digits": (1347, 450)} and live.queues == ("cpu",)
    workers.retire(sessions, "w@h")
    with sessions() as session:
        assert workers.live_workers(session, 3600) == []

"""Verification through the API and a real Celery worker process: a finished experiment replays
identical; a stored snapshot altered behind the service's back (rewritten consistently, or with
corrupt bytes) is named. PostgreSQL, a SQLite broker, a file snapshot store."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterator

import numpy as np
import pytest
from sqlalchemy import update
from typer.testing import CliRunner
from weightspace_app.infra.db import SnapshotRecord, make_engine, make_sessionmaker

from tests.integration.serving import api_and_worker
from weightspace.snapshots import (
    LocalStore,
    decode_snapshot,
    encode_snapshot,
    sha256_hex,
    snapshot_key,
)
from weightspace_client import ApiError, WeightspaceClient
from weightspace_client.cli import app as cli

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SPEC = {
    "dataset": {"name": "digits", "train_size": 200, "test_size": 100},
    "model": {"kind": "mlp", "hidden": [8]},
    "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9},
    "epochs": 3,
    "batch_size": 32,
    "dropout": 0.1,
    "replicas": 2,
}
TIMEOUT = 180


@dataclasses.dataclass(frozen=True)
class Service:
    ws: WeightspaceClient
    store: LocalStore
    database_url: str


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory, migrated_postgres_url: str
) -> Iterator[Service]:
    home = tmp_path_factory.mktemp("verify")
    with (
        api_and_worker(home, migrated_postgres_url) as url,
        WeightspaceClient(url, timeout=60) as client,
    ):
        yield Service(client, LocalStore(home / "snapshots"), migrated_postgres_url)


def finished(ws: WeightspaceClient) -> str:
    experiment_id: str = ws.submit(SPEC)["id"]
    assert ws.wait(experiment_id, poll=0.5, timeout=TIMEOUT)["status"] == "succeeded"
    return experiment_id


def alter(service: Service, experiment_id: str, run: int, epoch: int) -> None:
    """Add 0.5 to one parameter of the stored snapshot and store it again, with a valid params
    checksum (the database still records the original file's sha256)."""
    key = snapshot_key(experiment_id, run, epoch)
    snapshot = decode_snapshot(service.store.get(key))
    params = snapshot.params.copy()
    params[3] += np.float32(0.5)
    service.store.put(
        key, encode_snapshot(dataclasses.replace(snapshot, params=params), experiment_id)
    )


def record(service: Service, experiment_id: str, run: int, epoch: int) -> None:
    """Make the database's sha256 and size of the snapshot agree with the file as it is now."""
    data = service.store.get(snapshot_key(experiment_id, run, epoch))
    engine = make_engine(service.database_url)
    try:
        with make_sessionmaker(engine)() as session:
            session.execute(
                update(SnapshotRecord)
                .where(
                    SnapshotRecord.experiment_id == uuid.UUID(experiment_id),
                    SnapshotRecord.run == run,
                    SnapshotRecord.epoch == epoch,
                )
                .values(sha256=sha256_hex(data), size=len(data))
            )
            session.commit()
    finally:
        engine.dispose()


def test_a_finished_experiment_verifies_identical(service: Service) -> None:
    ws = service.ws
    experiment_id = finished(ws)
    posted = ws.http.post(f"/experiments/{experiment_id}/verify")
    assert posted.status_code == 202 and posted.json()["status"] == "queued"
    assert posted.headers["Location"] == f"/experiments/{experiment_id}/verify"
    assert posted.headers["Retry-After"].isdigit()

    result = ws.verify(experiment_id, poll=0.3, timeout=TIMEOUT)
    assert result["status"] == "ready" and result["verdict"] == "identical", result
    assert result["difference"] is None and result["runs"] == [0, 1]
    assert result["until_epoch"] == 3 and result["run"] is None and result["epoch"] is None
    compared = {(c["run"], c["epoch"]) for c in result["compared"]}
    assert compared == {(run, epoch) for run in (0, 1) for epoch in range(4)}
    assert result["environment"]["torch"] and result["environment"]["threads"] == "1"
    assert ws.http.get(f"/experiments/{experiment_id}/verify").json() == result

    one = ws.verify(experiment_id, run=1, epoch=2, poll=0.3, timeout=TIMEOUT)
    assert one["verdict"] == "identical" and (one["run"], one["epoch"]) == (1, 2)
    assert [(c["run"], c["epoch"]) for c in one["compared"]] == [(1, 0), (1, 1), (1, 2)]

    prefix = experiment_id[:8]  # an id prefix names it, as for the other commands
    result = CliRunner().invoke(cli, ["verify", prefix, "--run", "0", "--url", ws.base_url])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("identical: 4 snapshots of run(s) 0"), result.output


def test_an_altered_snapshot_is_named(service: Service) -> None:
    ws = service.ws
    experiment_id = finished(ws)

    # Rewritten with a valid params checksum, but the service recorded the file's sha256.
    alter(service, experiment_id, 1, 2)
    result = ws.verify(experiment_id, run=1, poll=0.3, timeout=TIMEOUT)
    difference = result["difference"]
    assert result["verdict"] == "differs" and difference is not None
    assert (difference["run"], difference["epoch"], difference["reason"]) == (1, 2, "unreadable")
    assert "sha256" in difference["detail"]

    # Rewritten consistently, database included: only the replay tells.
    record(service, experiment_id, 1, 2)
    result = ws.verify(experiment_id, run=1, poll=0.3, timeout=TIMEOUT)
    difference = result["difference"]
    assert result["verdict"] == "differs" and difference is not None
    assert (difference["run"], difference["epoch"], difference["reason"]) == (1, 2, "parameters")
    assert difference["differing_values"] == 1
    assert difference["max_abs_difference"] == pytest.approx(0.5, rel=1e-3)
    assert difference["stored_environment"] == difference["replay_environment"]
    assert difference["replay_environment"]["torch"]
    assert [(c["run"], c["epoch"]) for c in result["compared"]] == [(1, 0), (1, 1)]
    printed = CliRunner().invoke(cli, ["verify", experiment_id, "--run", "1", "--url", ws.base_url])
    assert printed.exit_code == 1
    assert "differs at run 1, epoch 2 (parameters)" in " ".join(printed.output.split())
    assert "1 of " in printed.output and "largest difference: 0.5" in printed.output
    assert "environments" in printed.output  # stored and replay side by side

    # Corrupt bytes in run 0's snapshot at epoch 1: the first difference of every run's replay.
    key = snapshot_key(experiment_id, 0, 1)
    data = bytearray(service.store.get(key))
    data[-1] ^= 0xFF
    service.store.put(key, bytes(data))
    args = ["verify", experiment_id, "--url", ws.base_url]
    result = CliRunner().invoke(cli, [*args, "--json"])
    assert result.exit_code == 1, result.output
    difference = json.loads(result.output)["difference"]
    assert (difference["run"], difference["epoch"], difference["reason"]) == (0, 1, "unreadable")
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    assert "differs at run 0, epoch 1 (unreadable)" in " ".join(result.output.split())
    assert "replay environment: torch" in " ".join(result.output.split())


def test_what_cannot_be_verified_is_refused_with_a_problem(service: Service) -> None:
    ws = service.ws
    experiment_id = finished(ws)
    for body, field in (
        ({"run": 2}, "run"),
        ({"epoch": 7}, "epoch"),
        ({"run": -1}, "run"),
        ({"run": "0"}, "run"),
        ({"runs": [0]}, "runs"),
    ):
        response = ws.http.post(f"/experiments/{experiment_id}/verify", json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["errors"][0]["field"] == field, response.json()
    never = ws.http.get(f"/experiments/{experiment_id}/verify?run=1")
    assert never.status_code == 409 and "POST" in never.json()["detail"]
    assert ws.http.post(f"/experiments/{uuid.uuid4()}/verify").status_code == 404

    upload = ws.create_upload(replicas=1)["id"]
    ws.upload(upload, 0, 0, {"w": np.zeros(4)})
    ws.complete(upload)
    refused = ws.http.post(f"/experiments/{upload}/verify")
    assert refused.status_code == 409 and "uploaded" in refused.json()["detail"]

    running = ws.submit({**SPEC, "epochs": 1000})["id"]
    ws.cancel(running)
    with pytest.raises(ApiError) as cancelled:
        ws.verify(running)
    assert cancelled.value.status == 409

"""End to end with tokens: API and worker processes on PostgreSQL, Redis and SeaweedFS. Tokens
made by the server-side command; a running experiment cancelled, retried (it continues where it
stopped), cancelled again and deleted, leaving no object in the bucket; strangers see nothing."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.e2e.scenario import free_port, spawn, stop, wait_healthy
from tests.e2e.test_worker_crash import start_worker
from weightspace_client import WeightspaceClient
from weightspace_client.client import ApiError

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SPEC = {
    "name": "lifecycle-e2e",
    "seed": 11,
    "dataset": {"name": "digits", "train_size": 300, "test_size": 50},
    "model": {"kind": "mlp", "hidden": [16]},
    "epochs": 2000,
    "batch_size": 10,
    "snapshot_every": 1,
}


@pytest.fixture
def broker() -> Iterator[str]:
    url = f"redis://127.0.0.1:6379/{random.randint(1, 15)}"
    yield url
    redis.Redis.from_url(url).flushdb()


def until(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def test_cancel_retry_delete_with_tokens_on_real_services(
    tmp_path: Path, fresh_postgres_url: str, seaweedfs: Any, broker: str
) -> None:
    bucket = f"ws-e2e-{uuid.uuid4().hex[:12]}"
    env = {
        **os.environ,
        "WEIGHTSPACE_HOME": str(tmp_path / "home"),
        "WEIGHTSPACE_DATABASE_URL": fresh_postgres_url,
        "WEIGHTSPACE_BROKER_URL": broker,
        "WEIGHTSPACE_STORAGE_URL": f"s3://{bucket}",
        "WEIGHTSPACE_S3_ENDPOINT_URL": seaweedfs.endpoint_url,
        "WEIGHTSPACE_S3_ACCESS_KEY": seaweedfs.access_key,
        "WEIGHTSPACE_S3_SECRET_KEY": seaweedfs.secret_key,
        "WEIGHTSPACE_S3_REGION": seaweedfs.region,
        "WEIGHTSPACE_DEFAULT_QUEUE": "cpu",
        "WEIGHTSPACE_AUTH": "tokens",
    }
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    processes = []
    s3 = seaweedfs.client()
    try:
        api_log = tmp_path / "api.log"
        api = [sys.executable, "-m", "weightspace_service", "--port", str(port)]
        processes.append(spawn(api, env, api_log))
        wait_healthy(url, processes[0], api_log)  # it has migrated the database

        def token(owner: str) -> str:
            made = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "weightspace_app.usecases.tokens",
                    "create",
                    "--owner",
                    owner,
                ],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            return made.stdout.strip()

        alice, bob = token("alice"), token("bob")
        worker_log = tmp_path / "worker.log"
        processes.append(start_worker(env, worker_log, f"e2e-lifecycle-{port}"))
        try:
            with (
                WeightspaceClient(url, token=alice, timeout=60) as client,
                WeightspaceClient(url, token=bob, timeout=60) as stranger,
                WeightspaceClient(url, token="ws_wrong", timeout=60) as nobody,
            ):
                with pytest.raises(ApiError) as refused:
                    nobody.list_experiments().__next__()
                assert refused.value.status == 401

                experiment = client.submit(SPEC)
                experiment_id = experiment["id"]

                def progressed(beyond: int) -> int:
                    runs = client.get_experiment(experiment_id)["runs"]
                    epoch = runs[0]["epoch"] or 0
                    return epoch if epoch > beyond else 0

                until(lambda: progressed(2), 180, "training to start")
                with pytest.raises(ApiError) as hidden:
                    stranger.cancel(experiment_id)
                assert hidden.value.status == 404
                client.cancel(experiment_id)
                with pytest.raises(ApiError) as busy:  # its worker may still be writing
                    client.delete(experiment_id)
                assert busy.value.status == 409
                stopped = until(
                    lambda: (e := client.get_experiment(experiment_id))["finished_at"] and e,
                    60,
                    "the worker to stop",
                )
                assert stopped["status"] == "cancelled"
                at_cancel = stopped["runs"][0]["epoch"]
                kept = list(client.list_snapshots(experiment_id, 0))
                assert kept and kept[-1]["epoch"] <= at_cancel < SPEC["epochs"]

                assert client.retry(experiment_id)["status"] == "queued"
                until(lambda: progressed(at_cancel + 2), 180, "the retried run to go on")
                epochs = [s["epoch"] for s in client.list_snapshots(experiment_id, 0)]
                assert epochs == sorted(set(epochs)), "the retry continued, it did not restart"
                assert epochs[: len(kept)] == [s["epoch"] for s in kept]

                client.cancel(experiment_id)
                until(
                    lambda: client.get_experiment(experiment_id)["finished_at"],
                    60,
                    "the worker to stop again",
                )
                prefix = f"experiments/{uuid.UUID(experiment_id).hex}/"
                assert s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("KeyCount", 0) > 0
                client.delete(experiment_id)
                assert s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("KeyCount", 0) == 0
                with pytest.raises(ApiError) as gone:
                    client.get_experiment(experiment_id)
                assert gone.value.status == 404
        except BaseException:
            print(worker_log.read_text()[-4000:])
            print(api_log.read_text()[-4000:])
            raise
    finally:
        for process in processes:
            stop(process)

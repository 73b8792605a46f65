"""End to end, distributed: API and worker processes on PostgreSQL, SeaweedFS (S3) and a real
broker: Redis, and RabbitMQ."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.e2e.scenario import free_port, run_scenario, stop, wait_healthy

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(params=["redis", "amqp"])
def broker(request: pytest.FixtureRequest) -> Iterator[str]:
    """A broker of its own: a Redis database (flushed after), or a RabbitMQ vhost (deleted after)."""
    if request.param == "redis":
        url = f"redis://127.0.0.1:6379/{random.randint(1, 15)}"
        yield url
        redis.Redis.from_url(url).flushdb()
        return
    vhost = f"weightspace-test-{uuid.uuid4().hex[:8]}"
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], check=True, capture_output=True)
    subprocess.run(
        ["rabbitmqctl", "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"],
        check=True,
        capture_output=True,
    )
    yield f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
    subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], check=True, capture_output=True)


def test_api_and_worker_processes_on_real_services(
    tmp_path: Path, fresh_postgres_url: str, seaweedfs, broker: str
) -> None:  # type: ignore[no-untyped-def]
    env = {
        **os.environ,
        "WEIGHTSPACE_HOME": str(tmp_path / "home"),
        "WEIGHTSPACE_DATABASE_URL": fresh_postgres_url,
        "WEIGHTSPACE_BROKER_URL": broker,
        "WEIGHTSPACE_STORAGE_URL": f"s3://ws-e2e-{uuid.uuid4().hex[:12]}/snapshots",
        "WEIGHTSPACE_S3_ENDPOINT_URL": seaweedfs.endpoint_url,
        "WEIGHTSPACE_S3_ACCESS_KEY": seaweedfs.access_key,
        "WEIGHTSPACE_S3_SECRET_KEY": seaweedfs.secret_key,
        "WEIGHTSPACE_S3_REGION": seaweedfs.region,
        "WEIGHTSPACE_DEFAULT_QUEUE": "gpu",
    }
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    processes = []
    try:
        # The worker starts first and creates the bucket; the API migrates the database.
        worker_log = tmp_path / "worker.log"
        with worker_log.open("wb") as out:
            processes.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "weightspace_worker",
                        "--queues",
                        "gpu,cpu",
                        "--pool",
                        "solo",
                        "--hostname",
                        f"e2e-{port}@%h",
                    ],
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        api_log = tmp_path / "api.log"
        with api_log.open("wb") as out:
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "weightspace_service", "--port", str(port)],
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        wait_healthy(url, processes[1], api_log)
        try:
            run_scenario(url, tmp_path)
        except BaseException:
            print(worker_log.read_text()[-4000:])
            raise
    finally:
        for process in processes:
            stop(process)

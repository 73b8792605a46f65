"""End to end, distributed: API and worker processes on PostgreSQL, Redis and SeaweedFS (S3)."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import redis

from tests.e2e.scenario import free_port, run_scenario, stop, wait_healthy

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_api_and_worker_processes_on_real_services(
    tmp_path: Path, fresh_postgres_url: str, seaweedfs
) -> None:  # type: ignore[no-untyped-def]
    redis_db = random.randint(1, 15)
    broker = f"redis://127.0.0.1:6379/{redis_db}"
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
                        "worker",
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
                    [sys.executable, "-m", "service", "--port", str(port)],
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
        redis.Redis.from_url(broker).flushdb()

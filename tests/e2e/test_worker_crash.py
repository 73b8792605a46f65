"""A killed worker loses no work: its lease runs out, the reaper re-enqueues, the run resumes.

Real processes on PostgreSQL, Redis (default visibility timeout) and a local snapshot directory;
the first worker is killed with SIGKILL mid-run, a second one resumes it, bitwise.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from tests.e2e.crash import FAST_LEASES, kill_mid_run_and_check
from tests.e2e.scenario import free_port, stop, wait_healthy
from weightspace_client import WeightspaceClient

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def start_worker(env: dict[str, str], log: Path, name: str) -> subprocess.Popen:
    with log.open("ab") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "weightspace_worker",
                "--queues",
                "cpu",
                "--pool",
                "solo",
                "--hostname",
                f"{name}@%h",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def test_killed_worker_resumes_from_last_snapshot(tmp_path: Path, fresh_postgres_url: str) -> None:
    """Redis with its default visibility timeout (7 days): the lease reaper, not the broker,
    notices the dead worker and re-enqueues; the second worker resumes bitwise."""
    broker = f"redis://127.0.0.1:6379/{random.randint(1, 15)}"
    env = {
        **os.environ,
        **FAST_LEASES,
        "WEIGHTSPACE_HOME": str(tmp_path / "home"),
        "WEIGHTSPACE_DATABASE_URL": fresh_postgres_url,
        "WEIGHTSPACE_BROKER_URL": broker,
    }
    env.pop("WEIGHTSPACE_VISIBILITY_TIMEOUT", None)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "processes.log"
    with log.open("wb") as out:
        api = subprocess.Popen(
            [sys.executable, "-m", "weightspace_service", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    workers = []
    try:
        wait_healthy(url, api, log)
        workers.append(start_worker(env, log, "first"))

        def kill() -> None:
            os.killpg(workers[0].pid, 9)
            workers[0].wait()
            workers.append(start_worker(env, log, "second"))

        with WeightspaceClient(url) as client:
            kill_mid_run_and_check(client, kill, tmp_path, log)
    finally:
        for process in [*workers, api]:
            stop(process)
        redis.Redis.from_url(broker).flushdb()

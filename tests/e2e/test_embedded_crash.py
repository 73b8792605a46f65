"""Embedded mode: a worker killed with SIGKILL mid-run is replaced by ``weightspace up``, and
the experiment succeeds within 2 minutes, bitwise equal to an undisturbed run (the embedded
broker never restores a message its dead consumer fetched: the lease reaper re-enqueues)."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.e2e.crash import FAST_LEASES, kill_mid_run_and_check
from tests.e2e.scenario import free_port, stop, wait_healthy
from tests.e2e.test_embedded import weightspace_command
from weightspace_client import WeightspaceClient

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def worker_pid(up: int) -> int:
    """The pid of ``up``'s worker child (``python -m weightspace_worker ...``)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == up and b"weightspace_worker" in cmdline:
            return int(entry.name)
    raise AssertionError("no worker process found")


def test_a_killed_embedded_worker_is_replaced_and_the_experiment_heals(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "up.log"
    env = {**os.environ, **FAST_LEASES}
    with log.open("wb") as out:
        up = subprocess.Popen(
            [weightspace_command(), "up", "--port", str(port), "--home", str(tmp_path / "home")],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_healthy(url, up, log)

        def kill() -> None:
            os.killpg(worker_pid(up.pid), signal.SIGKILL)

        with WeightspaceClient(url) as client:
            kill_mid_run_and_check(client, kill, tmp_path, log, heal_within=120)
        assert up.poll() is None  # still up, with a new worker
        assert "starting a new one" in log.read_text()
    finally:
        stop(up)

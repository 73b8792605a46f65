"""Through the service: the same spec on two embedded services started with different thread
settings gives bitwise the same snapshots (the 28x28 kernel-5 CNN where it once did not)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from safetensors.numpy import load_file

from tests.e2e.scenario import free_port, spawn, stop, wait_healthy
from tests.e2e.test_embedded import weightspace_command
from tests.unit.test_determinism import FASHION_CNN
from weightspace_client import WeightspaceClient

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# The kernel-5 CNN of the thread-setting tests, 3 epochs.
SPEC = {**FASHION_CNN, "name": "threads", "epochs": 3}


def _snapshots(url: str, downloads: Path) -> dict[tuple[int, int], tuple[bytes, object]]:
    """Each snapshot's parameter bytes and metrics, by (run, epoch)."""
    found: dict[tuple[int, int], tuple[bytes, object]] = {}
    with WeightspaceClient(url, timeout=60) as client:
        experiment = client.wait(client.submit(SPEC)["id"], poll=0.5, timeout=600)
        assert experiment["status"] == "succeeded", experiment.get("error")
        for run in (0, 1):  # SPEC["replicas"]
            for info in client.list_snapshots(experiment["id"], run):
                path = client.download_snapshot(
                    experiment["id"], run, info["epoch"], downloads / f"{run}-{info['epoch']}"
                )
                params = load_file(str(path))["params"].tobytes()
                found[run, info["epoch"]] = (params, info["metrics"])
    return found


def test_services_with_different_thread_settings_store_the_same_bits(tmp_path: Path) -> None:
    services: list[tuple[str, subprocess.Popen[bytes], Path]] = []
    try:
        for threads in ("1", "2"):
            port = free_port()
            log = tmp_path / f"up-{threads}.log"
            env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
            argv = [weightspace_command(), "up", "--port", str(port)]
            process = spawn([*argv, "--home", str(tmp_path / f"home-{threads}")], env, log)
            services.append((f"http://127.0.0.1:{port}", process, log))
        for url, process, log in services:
            wait_healthy(url, process, log)
        results = []
        for i, (url, _, _) in enumerate(services):
            (tmp_path / f"downloads-{i}").mkdir()
            results.append(_snapshots(url, tmp_path / f"downloads-{i}"))
    finally:
        for _, process, _ in services:
            stop(process)
    one, two = results
    assert sorted(one) == [(run, epoch) for run in (0, 1) for epoch in range(4)]
    differing = [key for key in one if one[key] != two[key]]
    assert not differing, f"snapshots differ between 1 and 2 threads: {differing}"

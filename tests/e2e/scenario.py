"""The end-to-end scenario both deployments must pass, driven through the httpx client."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import numpy as np
from safetensors.numpy import load_file

from weightspace_client import WeightspaceClient

SPEC = {
    "name": "e2e",
    "seed": 11,
    "dataset": {"name": "digits", "train_size": 400, "test_size": 200},
    "model": {"kind": "mlp", "hidden": [16]},
    "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4},
    "epochs": 4,
    "batch_size": 32,
    "dropout": 0.1,
    "snapshot_every": 1,
    "replicas": 3,
    "init": "independent",
    "data_order": "independent",
}


def spawn(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:  # type: ignore[type-arg]
    """A process of its own session (stopped by :func:`stop`), its output appended to ``log``."""
    with log.open("ab") as out:
        return subprocess.Popen(
            argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, process: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                f"process exited with {process.returncode}:\n{log.read_text()[-4000:]}"
            )
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} did not become healthy:\n{log.read_text()[-4000:]}")


def stop(process: subprocess.Popen, timeout: float = 30) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def run_scenario(url: str, downloads: Path) -> None:
    """Submit a small experiment, wait, and check PCA, a download and its distance from the origin."""
    with WeightspaceClient(url, timeout=60) as client:
        readiness = client.ready()
        assert readiness["status"] == "ready", readiness
        submitted = client.submit(SPEC)
        final = client.wait(submitted["id"], poll=0.5, timeout=600)
        assert final["status"] == "succeeded", final.get("error")
        assert [run["epoch"] for run in final["runs"]] == [4, 4, 4]

        pca = client.pca(final["id"], components=2)
        assert pca["complete"] is True
        assert len(pca["points"]) == 3 * 5 and all(
            len(p["coordinates"]) == 2 for p in pca["points"]
        )
        ratios = pca["explained_variance_ratio"]
        assert ratios[0] >= ratios[1] > 0 and sum(ratios) <= 1 + 1e-12

        listed = {s["epoch"]: s for s in client.list_snapshots(final["id"], 1)}
        assert sorted(listed) == [0, 1, 2, 3, 4]
        path = client.download_snapshot(final["id"], 1, 4, downloads / "run1-epoch4.safetensors")
        assert hashlib.sha256(path.read_bytes()).hexdigest() == listed[4]["sha256"]
        vector = load_file(str(path))["params"].astype(np.float64)
        assert vector.size == listed[4]["parameters"]

        distances = client.distances(final["id"])
        assert distances["epoch"] == 4 and distances["runs"] == [0, 1, 2]
        np.testing.assert_allclose(
            np.linalg.norm(vector), distances["distance_from_origin"][1], rtol=1e-6
        )

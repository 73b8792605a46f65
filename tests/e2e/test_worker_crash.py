"""A killed worker loses no work: the broker redelivers the task and the run resumes, bitwise.

Real processes on PostgreSQL, Redis and a local snapshot directory; the first worker is killed
with SIGKILL mid-run, a second one picks the task up after the visibility timeout.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import redis
from safetensors.numpy import load_file

from tests.e2e.scenario import free_port, stop, wait_healthy
from weightspace.data import load_dataset
from weightspace.snapshots import Snapshot, TrainState
from weightspace.spec import ExperimentSpec
from weightspace.training import Trainer
from weightspace_client import WeightspaceClient

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SPEC = {
    "seed": 5,
    "dataset": {"name": "digits"},
    "model": {"kind": "mlp", "hidden": [128]},
    "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9},
    "epochs": 60,
    "batch_size": 32,
    "dropout": 0.2,
    "snapshot_every": 5,
    "replicas": 2,
}


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
    broker = f"redis://127.0.0.1:6379/{random.randint(1, 15)}"
    env = {
        **os.environ,
        "WEIGHTSPACE_HOME": str(tmp_path / "home"),
        "WEIGHTSPACE_DATABASE_URL": fresh_postgres_url,
        "WEIGHTSPACE_BROKER_URL": broker,
        "WEIGHTSPACE_VISIBILITY_TIMEOUT": "3",
    }
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
        with WeightspaceClient(url) as client:
            experiment_id = client.submit(SPEC, queue="cpu")["id"]
            deadline = time.monotonic() + 120
            while True:  # kill the first worker once a few snapshots exist, well before the end
                runs = client.get_experiment(experiment_id)["runs"]
                if min((r["metrics"] is not None and (r["epoch"] or 0)) or 0 for r in runs) >= 10:
                    break
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.05)
            os.killpg(workers[0].pid, 9)
            workers[0].wait()
            stop_epochs = [r["epoch"] for r in client.get_experiment(experiment_id)["runs"]]
            before = {s["epoch"]: s for s in client.list_snapshots(experiment_id, 0)}
            assert max(stop_epochs) < 60, "the run finished before the worker was killed"
            workers.append(start_worker(env, log, "second"))
            final = client.wait(experiment_id, poll=0.5, timeout=300)
            assert final["status"] == "succeeded", final.get("error")
            # Resumed, not restarted: the snapshots taken before the kill were not written again.
            after = {s["epoch"]: s for s in client.list_snapshots(experiment_id, 0)}
            assert all(after[e]["created_at"] == before[e]["created_at"] for e in before)

            # The stored trajectory is bitwise the uninterrupted one.
            expected: dict[tuple[int, int], np.ndarray] = {}

            def keep(snapshot: Snapshot, _state: TrainState) -> None:
                expected[snapshot.run, snapshot.epoch] = snapshot.params

            spec = ExperimentSpec.model_validate(SPEC)
            Trainer(spec, load_dataset(spec.dataset)).train(keep)
            for run in (0, 1):
                epochs = [s["epoch"] for s in client.list_snapshots(experiment_id, run)]
                assert epochs == spec.snapshot_epochs()
                for epoch in (epochs[len(epochs) // 2], epochs[-1]):
                    path = client.download_snapshot(
                        experiment_id, run, epoch, tmp_path / f"{run}-{epoch}.safetensors"
                    )
                    assert (
                        load_file(str(path))["params"].tobytes() == expected[run, epoch].tobytes()
                    )
    finally:
        for process in [*workers, api]:
            stop(process)
        redis.Redis.from_url(broker).flushdb()

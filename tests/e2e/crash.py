"""Shared by the crash tests: kill a worker mid-run, then check the experiment heals bitwise."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load_file

from weightspace.data import load_dataset
from weightspace.snapshots import Snapshot, TrainState
from weightspace.spec import ExperimentSpec
from weightspace.training import Trainer
from weightspace_client import WeightspaceClient

SPEC: dict[str, Any] = {
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
#: Short leases so that a dead worker is noticed in seconds (the default is 30 s).
FAST_LEASES = {"WEIGHTSPACE_LEASE_SECONDS": "3", "WEIGHTSPACE_REAPER_INTERVAL": "1"}


def kill_mid_run_and_check(
    client: WeightspaceClient,
    kill: Callable[[], None],
    downloads: Path,
    log: Path,
    *,
    heal_within: float = 120,
) -> None:
    """Submit SPEC, ``kill`` the worker once every run has a few snapshots, then require the
    experiment to succeed within ``heal_within`` seconds, resumed (snapshots taken before the kill
    not rewritten) and bitwise equal to an undisturbed run."""
    experiment_id = client.submit(SPEC, queue="cpu")["id"]
    deadline = time.monotonic() + 180
    while True:
        runs = client.get_experiment(experiment_id)["runs"]
        if min((r["metrics"] is not None and (r["epoch"] or 0)) or 0 for r in runs) >= 10:
            break
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.05)
    kill()
    killed_at = time.monotonic()
    stop_epochs = [r["epoch"] for r in client.get_experiment(experiment_id)["runs"]]
    assert max(stop_epochs) < 60, "the run finished before the worker was killed"
    before = {s["epoch"]: s for s in client.list_snapshots(experiment_id, 0)}
    final = client.wait(experiment_id, poll=0.5, timeout=heal_within)
    assert final["status"] == "succeeded", (final.get("error"), log.read_text()[-3000:])
    assert time.monotonic() - killed_at < heal_within
    after = {s["epoch"]: s for s in client.list_snapshots(experiment_id, 0)}
    assert all(after[e]["created_at"] == before[e]["created_at"] for e in before)

    expected: dict[tuple[int, int], np.ndarray] = {}

    def keep(snapshot: Snapshot, _state: TrainState) -> None:
        expected[snapshot.run, snapshot.epoch] = snapshot.params

    spec = ExperimentSpec.model_validate(SPEC)
    Trainer(spec, load_dataset(spec.dataset)).train(keep)
    for run in (0, 1):
        epochs = [s["epoch"] for s in client.list_snapshots(experiment_id, run)]
        assert epochs == spec.snapshot_epochs()
        for epoch in epochs:
            path = client.download_snapshot(
                experiment_id, run, epoch, downloads / f"{run}-{epoch}.safetensors"
            )
            assert load_file(str(path))["params"].tobytes() == expected[run, epoch].tobytes()

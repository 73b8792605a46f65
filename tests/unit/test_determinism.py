"""Training does not depend on the process's thread settings; each run records its environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from weightspace import determinism
from weightspace.data import load_dataset
from weightspace.snapshots import Snapshot, TrainState, decode_snapshot, encode_snapshot
from weightspace.spec import ExperimentSpec
from weightspace.training import EpochProgress, Trainer

SPEC = {
    "seed": 5,
    "dataset": {"name": "digits", "train_size": 400, "test_size": 100},
    "model": {"kind": "cnn", "channels": [8, 16], "kernel_size": 3, "hidden": 64},
    "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4},
    "epochs": 2,
    "batch_size": 64,
    "dropout": 0.3,
    "snapshot_every": 2,
    "replicas": 2,
}

# Trains SPEC in a fresh interpreter and prints the final parameters' bytes (hex) per run.
CHILD = """
import json, sys
from weightspace.data import load_dataset
from weightspace.spec import ExperimentSpec
from weightspace.training import Trainer
spec = ExperimentSpec.model_validate(json.loads(sys.argv[1]))
final = {}
def keep(snapshot, state):
    if snapshot.epoch == spec.final_epoch:
        final[snapshot.run] = snapshot.params.tobytes().hex()
Trainer(spec, load_dataset(spec.dataset), batched=sys.argv[2] == "1").train(keep)
print(json.dumps(final))
"""


def _train_in_child(threads: int, batched: bool) -> dict[str, str]:
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
        "TORCH_NUM_THREADS": str(threads),
    }
    out = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(SPEC), "1" if batched else "0"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    result: dict[str, str] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.slow
def test_thread_settings_of_the_process_do_not_change_the_parameters() -> None:
    for batched in (False, True):
        one = _train_in_child(1, batched)
        two = _train_in_child(2, batched)
        assert one.keys() == {"0", "1"}
        assert one == two, f"batched={batched}"


def test_training_runs_on_fixed_threads_and_restores_the_setting() -> None:
    spec = ExperimentSpec.model_validate({**SPEC, "epochs": 1, "replicas": 1})
    before = torch.get_num_threads()
    seen: list[int] = []
    snapshots: list[Snapshot] = []

    def on_epoch(_: EpochProgress) -> None:
        seen.append(torch.get_num_threads())

    def keep(snapshot: Snapshot, _state: TrainState) -> None:
        snapshots.append(snapshot)

    Trainer(spec, load_dataset(spec.dataset)).train(keep, on_epoch=on_epoch)
    assert seen == [determinism.TRAIN_THREADS]
    assert torch.get_num_threads() == before
    assert not torch.are_deterministic_algorithms_enabled()
    env = snapshots[-1].environment
    assert env["threads"] == str(determinism.TRAIN_THREADS)
    assert env["torch"] == torch.__version__
    assert env["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert env["device"].startswith("cpu")
    # The environment travels with the stored snapshot.
    decoded = decode_snapshot(encode_snapshot(snapshots[-1], "0" * 32))
    assert decoded.environment == env
    assert np.array_equal(decoded.params, snapshots[-1].params)


def test_replicas_side_by_side_on_threads_give_the_same_bits_as_one_after_another() -> None:
    spec = ExperimentSpec.model_validate({**SPEC, "replicas": 3})
    results = []
    for workers in (1, 3):
        final: dict[int, bytes] = {}

        def keep(snapshot: Snapshot, _state: TrainState, final: dict[int, bytes] = final) -> None:
            final[snapshot.run] = snapshot.params.tobytes()

        trainer = Trainer(spec, load_dataset(spec.dataset), batched=False, workers=workers)
        assert trainer.workers == workers
        trainer.train(keep)
        results.append(final)
    assert results[0] == results[1]
    assert len(set(results[0].values())) == 3

"""Replica-batched training: the same trajectories as one by one, bitwise deterministic, resumable."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from weightspace.data import load_dataset
from weightspace.snapshots import Snapshot, TrainState, decode_state, encode_state
from weightspace.spec import ExperimentSpec
from weightspace.training import Trainer

CNN = {"kind": "cnn", "channels": [4, 8], "kernel_size": 3, "hidden": 32}
# 300 examples in batches of 32: 10 steps an epoch, so 6 epochs are 60 steps.
EPOCHS = 6
# Float tolerance of batched against one-by-one training after 60 steps: the stacked (grouped)
# convolutions sum in another order, and the difference grows through training; measured
# 3e-7 on the CPU.
ATOL = 1e-5


def make_spec(**overrides: Any) -> ExperimentSpec:
    base: dict[str, Any] = {
        "seed": 11,
        "dataset": {"name": "digits", "train_size": 300, "test_size": 100},
        "model": CNN,
        "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 1e-4},
        "epochs": EPOCHS,
        "batch_size": 32,
        "dropout": 0.3,
        "snapshot_every": 2,
        "replicas": 3,
    }
    base.update(overrides)
    return ExperimentSpec.model_validate(base)


def train(
    spec: ExperimentSpec, *, batched: bool, **kwargs: Any
) -> tuple[dict[tuple[int, int], Snapshot], dict[tuple[int, int], TrainState]]:
    snapshots: dict[tuple[int, int], Snapshot] = {}
    states: dict[tuple[int, int], TrainState] = {}

    def keep(snapshot: Snapshot, state: TrainState) -> None:
        snapshots[snapshot.run, snapshot.epoch] = snapshot
        states[state.run, state.epoch] = state

    Trainer(spec, load_dataset(spec.dataset), batched=batched).train(keep, **kwargs)
    return snapshots, states


DESIGNS = {
    "independent": {},
    "shared-init": {"init": "shared"},
    "clones": {"init": "shared", "pretrain_epochs": 2, "epochs": EPOCHS - 1},
    "adam-mlp": {
        "model": {"kind": "mlp", "hidden": [32, 16]},
        "optimizer": {"name": "adam", "lr": 0.003, "weight_decay": 1e-4},
    },
}


@pytest.mark.parametrize("design", DESIGNS)
def test_batched_follows_the_one_by_one_trajectories(design: str) -> None:
    spec = make_spec(**DESIGNS[design])
    one, _ = train(spec, batched=False)
    stacked, _ = train(spec, batched=True)
    assert one.keys() == stacked.keys()
    for key in one:
        a, b = one[key], stacked[key]
        assert np.abs(a.params - b.params).max() <= ATOL, key
        for name, value in a.metrics.items():
            assert b.metrics[name] == pytest.approx(value, rel=1e-4, abs=1e-4), (key, name)
    # The replicas really did differ (not a comparison of one trajectory with itself).
    final = spec.final_epoch
    assert not np.allclose(stacked[0, final].params, stacked[1, final].params)
    assert stacked[0, final].environment["replicas"] == "batched"


def test_batched_is_bitwise_deterministic() -> None:
    spec = make_spec()
    a, _ = train(spec, batched=True)
    b, _ = train(spec, batched=True)
    for key in a:
        assert a[key].params.tobytes() == b[key].params.tobytes(), key
        assert a[key].metrics == b[key].metrics


def test_batched_resume_is_bitwise_identical_to_uninterrupted() -> None:
    spec = make_spec(optimizer={"name": "adam", "lr": 0.003, "weight_decay": 1e-4})
    full, states = train(spec, batched=True)
    # Runs stopped at different epochs; run 2 had finished. Through the safetensors encoding.
    resume = {
        0: decode_state(encode_state(states[0, 2], "0" * 32)),
        1: decode_state(encode_state(states[1, 4], "0" * 32)),
    }
    resumed, _ = train(spec, batched=True, resume=resume, runs=[0, 1])
    assert sorted(resumed) == [(0, 4), (0, 6), (1, 6)]
    for key, snapshot in resumed.items():
        assert snapshot.params.tobytes() == full[key].params.tobytes(), key
        assert snapshot.metrics == full[key].metrics


def test_one_run_alone_equals_its_slot_in_the_full_stack() -> None:
    spec = make_spec(epochs=2)
    full, _ = train(spec, batched=True)
    alone, _ = train(spec, batched=True, runs=[2])
    assert sorted(alone) == [(2, 0), (2, 2)]
    assert alone[2, 2].params.tobytes() == full[2, 2].params.tobytes()

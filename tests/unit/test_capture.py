"""Captures off the training loop: in order, bounded, errors surface, nothing queued is lost."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from weightspace.capture import CaptureWriter
from weightspace.data import load_dataset
from weightspace.snapshots import LocalStore, Snapshot, TrainState, state_key
from weightspace.spec import ExperimentSpec
from weightspace.training import Trainer


def _capture(epoch: int) -> tuple[Snapshot, TrainState]:
    params = np.full(3, epoch, dtype=np.float32)
    return Snapshot(0, epoch, params), TrainState(0, epoch, params, {}, {})


def test_captures_arrive_in_order_on_another_thread() -> None:
    seen: list[tuple[int, str]] = []

    def slow(snapshot: Snapshot, _state: TrainState) -> None:
        time.sleep(0.01)
        seen.append((snapshot.epoch, threading.current_thread().name))

    with CaptureWriter(slow, depth=2) as writer:
        for epoch in range(10):
            writer.put(*_capture(epoch))
    assert [epoch for epoch, _ in seen] == list(range(10))  # all written when the block ends
    assert {name for _, name in seen} == {"capture-writer"}


def test_a_failing_store_stops_training_and_later_captures_are_not_written() -> None:
    written: list[int] = []

    def store(snapshot: Snapshot, _state: TrainState) -> None:
        if snapshot.epoch == 2:
            raise OSError("store unreachable")
        written.append(snapshot.epoch)

    with pytest.raises(OSError, match="store unreachable"), CaptureWriter(store, depth=1) as w:
        for epoch in range(50):
            w.put(*_capture(epoch))
            time.sleep(0.002)
    assert written == [0, 1]  # never out of order past the failure


def test_queued_captures_are_written_before_a_training_error_propagates() -> None:
    written: list[int] = []
    gate = threading.Event()

    def store(snapshot: Snapshot, _state: TrainState) -> None:
        gate.wait(5)
        written.append(snapshot.epoch)

    with pytest.raises(KeyboardInterrupt), CaptureWriter(store, depth=4) as writer:
        for epoch in range(3):
            writer.put(*_capture(epoch))
        gate.set()
        raise KeyboardInterrupt
    assert written == [0, 1, 2]


def test_trainer_surfaces_a_store_error_and_the_stored_states_stay_consistent(
    tmp_path: Path,
) -> None:
    spec = ExperimentSpec.model_validate(
        {
            "dataset": {"name": "digits", "train_size": 200, "test_size": 50},
            "model": {"kind": "mlp", "hidden": [8]},
            "epochs": 6,
            "snapshot_every": 1,
        }
    )
    store = LocalStore(tmp_path)
    stored: list[int] = []

    def keep(snapshot: Snapshot, state: TrainState) -> None:
        if snapshot.epoch == 3:
            raise OSError("disk full")
        store.put(state_key("0" * 32, state.run, state.epoch), b"state")
        stored.append(snapshot.epoch)

    with pytest.raises(OSError, match="disk full"):
        Trainer(spec, load_dataset(spec.dataset)).train(keep)
    # What was stored is a prefix of the schedule: a resumed run continues from epoch 2.
    assert stored == [0, 1, 2]
    assert store.exists(state_key("0" * 32, 0, 2)) and not store.exists(state_key("0" * 32, 0, 4))

"""Training does not depend on the process's thread settings; each run records its environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from weightspace import determinism
from weightspace.data import (
    _pixel_statistics,
    _standardised,
    default_data_dir,
    find_idx_files,
    load_dataset,
)
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

# The presets' real shapes: the 28x28 kernel-5 CNN (where a float reduction over the images
# once gave thread-dependent inputs; the 8x8 digits CNN above happened to agree) and the paper's
# CNN, each on both training paths.
FASHION_CNN = {
    **SPEC,
    "seed": 7,
    "dataset": {"name": "fashion-mnist", "train_size": 600, "test_size": 200},
    "model": {"kind": "cnn", "channels": [6, 12], "kernel_size": 5, "hidden": 32},
    "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9},
    "batch_size": 32,
    "snapshot_every": 1,
}
PAPER_CNN = {
    **SPEC,
    "seed": 11,
    "dataset": {"name": "mnist", "train_size": 256, "test_size": 128},
    "model": {"kind": "paper-cnn"},
    "optimizer": {"name": "sgd", "lr": 0.01, "momentum": 0.9, "weight_decay": 5e-4},
    "dropout": 0.5,
    "snapshot_every": 1,
}

# Trains each spec on both paths in a fresh interpreter; prints the sha256 of every snapshot's
# parameters and metrics, keyed by spec, path, run and epoch.
CHILD = """
import hashlib, json, sys
from weightspace.data import load_dataset
from weightspace.landscape import gradient_norms
from weightspace.planes import landscape_plane
from weightspace.spec import ExperimentSpec
from weightspace.training import Trainer
found, last, path = {}, {}, {}
for index, raw in enumerate(json.loads(sys.argv[1])):
    spec = ExperimentSpec.model_validate(raw)
    data = load_dataset(spec.dataset)
    for batched in (False, True):
        def keep(snapshot, state, prefix=f"{index}/{'batched' if batched else 'one by one'}"):
            digest = hashlib.sha256(snapshot.params.tobytes())
            digest.update(json.dumps(snapshot.metrics, sort_keys=True).encode())
            found[f"{prefix}/{snapshot.run}/{snapshot.epoch}"] = digest.hexdigest()
            last[index] = snapshot.params
            if batched and snapshot.run == 0:
                path.setdefault(index, []).append(snapshot.params)
        Trainer(spec, data, batched=batched).train(keep)
    # The full-batch gradient norms beside claim 1's null, as the report computes them.
    norms = gradient_norms(spec, data, last[index]).to_dict()
    found[f"{index}/gradient/norms"] = json.dumps(norms, sort_keys=True)
    # A landscape plane over run 0's path (PCA of the path, then losses on a grid).
    if len(path[index]) >= 3:
        plane = landscape_plane(spec, data, path[index], resolution=4, examples=64)
        found[f"{index}/landscape/plane"] = hashlib.sha256(
            plane.train_loss.tobytes() + plane.test_loss.tobytes() + plane.alphas.tobytes()
        ).hexdigest()
print(json.dumps(found))
"""

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TORCH_NUM_THREADS")


def _train_in_child(threads: int | None, specs: list[dict[str, object]]) -> dict[str, str]:
    """Snapshot digests of ``specs`` trained in a child with ``threads`` (None: variables unset)."""
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    if threads is not None:
        env.update(dict.fromkeys(THREAD_VARIABLES, str(threads)))
    out = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(specs)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    result: dict[str, str] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.slow
@pytest.mark.parametrize("specs", [[SPEC], [FASHION_CNN, PAPER_CNN]], ids=["digits", "28x28"])
def test_thread_settings_of_the_process_do_not_change_the_parameters(
    specs: list[dict[str, object]],
) -> None:
    if any(spec["dataset"] == PAPER_CNN["dataset"] for spec in specs):
        find_idx_files("mnist", default_data_dir())  # MNIST must be there: no silent skip
    unset = _train_in_child(None, specs)
    planes = [key for key in unset if key.endswith("/landscape/plane")]
    epochs = {key.rsplit("/", 1)[1] for key in unset if "gradient" not in key} - {"plane"}
    assert len(unset) == len(specs) * (2 * 2 * len(epochs) + 1) + len(planes), sorted(unset)
    assert len(planes) == (len(specs) if len(epochs) >= 3 else 0), planes
    for threads in (1, 2, 4):
        other = _train_in_child(threads, specs)
        differing = sorted(key for key in unset if other.get(key) != unset[key])
        assert not differing, f"{threads} threads: {differing[:6]}"


def test_image_statistics_are_exact_and_thread_free() -> None:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(500, 28, 28), dtype=np.uint8)
    mean, std = _pixel_statistics(pixels, 255.0)
    values = pixels.astype(np.float64) / 255.0
    assert mean == pytest.approx(values.mean(), rel=1e-15)
    assert std == pytest.approx(values.std(ddof=1), rel=1e-14)
    with pytest.raises(ValueError, match="whole numbers"):
        _pixel_statistics(values, 1.0)
    threads = torch.get_num_threads()
    try:
        standardised = []
        for count in (1, 2):
            torch.set_num_threads(count)
            standardised.append(_standardised(pixels, pixels[:10], 255.0)[0])
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(standardised[0], standardised[1])
    assert standardised[0].dtype == torch.float32 and standardised[0].shape == (500, 1, 28, 28)


def test_training_runs_on_fixed_threads_and_restores_the_setting() -> None:
    spec = ExperimentSpec.model_validate({**SPEC, "epochs": 1, "replicas": 1})
    before = torch.get_num_threads()
    # Blocks another thread of this process may still hold (none in a quiet process): the
    # settings come back when the last block leaves.
    held = determinism._holders
    seen: list[int] = []
    snapshots: list[Snapshot] = []

    def on_epoch(_: EpochProgress) -> None:
        seen.append(torch.get_num_threads())

    def keep(snapshot: Snapshot, _state: TrainState) -> None:
        snapshots.append(snapshot)

    Trainer(spec, load_dataset(spec.dataset)).train(keep, on_epoch=on_epoch)
    assert seen == [determinism.TRAIN_THREADS]
    assert determinism._holders == held
    assert torch.are_deterministic_algorithms_enabled() == (held > 0)
    if held == 0:
        assert torch.get_num_threads() == before
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


def test_overlapping_blocks_keep_the_settings_until_the_last_one_leaves() -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    held = determinism._holders  # blocks other threads may still hold (none in a quiet process)
    entered, leave = threading.Event(), threading.Event()
    seen: list[int] = []

    def other_block() -> None:
        with determinism.deterministic():
            entered.set()
            leave.wait(10)
            seen.append(torch.get_num_threads())

    other = threading.Thread(target=other_block)
    try:
        other.start()
        assert entered.wait(10)
        with determinism.deterministic():
            assert torch.get_num_threads() == determinism.TRAIN_THREADS
        # The other block still runs: the process-wide settings are still its own.
        assert torch.are_deterministic_algorithms_enabled()
        leave.set()
        other.join(10)
        assert seen == [determinism.TRAIN_THREADS]  # the first block's leaving left it alone
        assert determinism._holders == held
        assert torch.are_deterministic_algorithms_enabled() == (held > 0)
    finally:
        leave.set()
        torch.set_num_threads(threads)

"""verify: a replay reproduces stored snapshots bitwise, and names the first one it does not."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from weightspace.data import load_dataset
from weightspace.errors import InvalidField
from weightspace.snapshots import (
    ChecksumError,
    ObjectNotFound,
    Snapshot,
    TrainState,
    decode_snapshot,
    encode_snapshot,
)
from weightspace.spec import ExperimentSpec
from weightspace.training import Trainer
from weightspace.verification import Scope, verify

EXPERIMENT = "0" * 32


def make_spec(**overrides: object) -> ExperimentSpec:
    base = {
        "seed": 3,
        "dataset": {"name": "digits", "train_size": 200, "test_size": 60},
        "model": {"kind": "mlp", "hidden": [8]},
        "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9},
        "epochs": 3,
        "batch_size": 32,
        "dropout": 0.2,
        "replicas": 2,
        **overrides,
    }
    return ExperimentSpec.model_validate(base)


def stored_files(spec: ExperimentSpec) -> dict[tuple[int, int], bytes]:
    """Every snapshot of a training of ``spec``, encoded as the service stores it."""
    files: dict[tuple[int, int], bytes] = {}

    def keep(snapshot: Snapshot, _state: TrainState) -> None:
        files[snapshot.run, snapshot.epoch] = encode_snapshot(snapshot, EXPERIMENT)

    Trainer(spec, load_dataset(spec.dataset)).train(keep)
    return files


def reader(files: dict[tuple[int, int], bytes]):  # type: ignore[no-untyped-def]
    def stored(run: int, epoch: int) -> Snapshot:
        if (run, epoch) not in files:
            raise ObjectNotFound(f"run {run} epoch {epoch}")
        return decode_snapshot(files[run, epoch])

    return stored


@pytest.fixture(scope="module")
def spec() -> ExperimentSpec:
    return make_spec()


@pytest.fixture(scope="module")
def files(spec: ExperimentSpec) -> dict[tuple[int, int], bytes]:
    return stored_files(spec)


def run_verify(spec: ExperimentSpec, files: dict[tuple[int, int], bytes], **scope: int):  # type: ignore[no-untyped-def]
    return verify(spec, load_dataset(spec.dataset), reader(files), Scope.of(spec, **scope))


def test_a_faithful_store_verifies_identical(
    spec: ExperimentSpec, files: dict[tuple[int, int], bytes]
) -> None:
    result = run_verify(spec, files)
    assert result.verdict == "identical" and result.difference is None
    assert sorted(result.compared) == sorted(files)  # every snapshot, both runs, epochs 0-3
    document = result.to_dict()
    assert document["verdict"] == "identical" and document["until_epoch"] == 3
    assert document["environment"]["torch"] and document["difference"] is None


def test_one_altered_parameter_is_named_with_its_difference(
    spec: ExperimentSpec, files: dict[tuple[int, int], bytes]
) -> None:
    original = decode_snapshot(files[1, 2])
    params = original.params.copy()
    params[5] += np.float32(0.25)
    altered = dict(files)
    # Rewritten with a valid checksum for the altered parameters: only a replay can tell.
    altered[1, 2] = encode_snapshot(dataclasses.replace(original, params=params), EXPERIMENT)
    result = run_verify(spec, altered)
    assert result.verdict == "differs"
    difference = result.difference
    assert difference is not None
    assert (difference.run, difference.epoch, difference.reason) == (1, 2, "parameters")
    assert difference.differing_values == 1
    assert difference.max_abs_difference == pytest.approx(0.25, rel=1e-3)
    assert difference.metrics == {}  # the metrics were left as they were
    assert difference.stored_environment == difference.replay_environment != {}
    # Everything before it was compared (epoch by epoch, runs in order), nothing after it.
    assert result.compared == ((0, 0), (1, 0), (0, 1), (1, 1), (0, 2))
    assert result.to_dict()["difference"]["max_abs_difference"] == difference.max_abs_difference


def test_altered_metrics_alone_are_a_difference(
    spec: ExperimentSpec, files: dict[tuple[int, int], bytes]
) -> None:
    original = decode_snapshot(files[0, 3])
    metrics = {**original.metrics, "test_loss": original.metrics["test_loss"] + 1e-9}
    altered = {
        **files,
        (0, 3): encode_snapshot(dataclasses.replace(original, metrics=metrics), EXPERIMENT),
    }
    difference = run_verify(spec, altered).difference
    assert difference is not None and difference.reason == "metrics"
    assert (difference.run, difference.epoch, difference.differing_values) == (0, 3, 0)
    assert difference.metrics == {
        "test_loss": (metrics["test_loss"], original.metrics["test_loss"])
    }


def test_corrupt_or_missing_files_are_named(
    spec: ExperimentSpec, files: dict[tuple[int, int], bytes]
) -> None:
    def corrupt(run: int, epoch: int) -> Snapshot:
        if (run, epoch) == (0, 1):
            raise ChecksumError("its bytes do not match their checksum")
        return decode_snapshot(files[run, epoch])

    result = verify(spec, load_dataset(spec.dataset), corrupt, Scope.of(spec))
    assert result.difference is not None
    assert (result.difference.run, result.difference.epoch) == (0, 1)
    assert result.difference.reason == "unreadable"
    assert "checksum" in result.difference.detail

    missing = {key: data for key, data in files.items() if key != (1, 0)}
    difference = run_verify(spec, missing).difference
    assert difference is not None and (difference.run, difference.epoch) == (1, 0)
    assert difference.reason == "unreadable"


def test_a_scope_replays_one_run_up_to_an_epoch(
    spec: ExperimentSpec, files: dict[tuple[int, int], bytes]
) -> None:
    result = run_verify(spec, files, run=1, epoch=1)
    assert result.verdict == "identical"
    assert result.compared == ((1, 0), (1, 1))
    assert result.to_dict()["runs"] == [1]


def test_clones_of_a_pretrained_model_verify() -> None:
    spec = make_spec(init="shared", pretrain_epochs=1, epochs=2, snapshot_every=2)
    files = stored_files(spec)
    result = run_verify(spec, files, run=1)
    assert result.verdict == "identical"
    assert result.compared == ((1, 1), (1, 3))


def test_a_scope_out_of_range_names_its_field(spec: ExperimentSpec) -> None:
    with pytest.raises(InvalidField) as run:
        Scope.of(spec, run=2)
    assert run.value.field == "run" and "0..1" in str(run.value)
    with pytest.raises(InvalidField) as epoch:
        Scope.of(make_spec(snapshot_every=2, epochs=5), epoch=3)
    assert epoch.value.field == "epoch" and "0, 2, 4, 5" in str(epoch.value)

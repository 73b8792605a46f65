"""LocalStore, object keys, and the snapshot and resume-state encodings of weightspace.snapshots."""

from __future__ import annotations

import itertools
import json
import uuid
from pathlib import Path

import numpy as np
import pytest

from weightspace.snapshots import (
    HEADER_PROBE_BYTES,
    SNAPSHOT_FORMAT,
    STATE_FORMAT,
    ChecksumError,
    LocalStore,
    ObjectNotFound,
    Snapshot,
    StoredVector,
    TrainState,
    check_key,
    decode_snapshot,
    decode_state,
    encode_snapshot,
    encode_state,
    experiment_prefix,
    get_snapshot,
    parse_header,
    put_snapshot,
    sha256_hex,
    snapshot_key,
    state_key,
)

EXPERIMENT = uuid.UUID("0b9e4f8c-1d2a-4e3b-8c7d-6a5f4e3d2c1b")


def _snapshot(size: int = 1000, **kwargs) -> Snapshot:
    params = np.random.default_rng(1).standard_normal(size).astype(np.float32)
    fields = {
        "run": 2,
        "epoch": 7,
        "params": params,
        "metrics": {"train_loss": 0.5, "test_accuracy": 0.9},
        "layout": (("fc1.weight", (10, 90)), ("fc1.bias", (10,)), ("fc2.weight", (90,))),
    }
    fields.update(kwargs)
    return Snapshot(**fields)


def _flip_param_byte(data: bytes, index: int = 0) -> bytes:
    begin, _ = parse_header(data).params_range()
    corrupted = bytearray(data)
    corrupted[begin + index] ^= 0x01
    return bytes(corrupted)


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store")


# --------------------------------------------------------------------------- encoding


def test_snapshot_round_trip() -> None:
    snapshot = _snapshot()
    data = encode_snapshot(snapshot, EXPERIMENT)
    decoded = decode_snapshot(data, sha256_hex(data))

    assert decoded.params.dtype == np.float32
    np.testing.assert_array_equal(decoded.params, snapshot.params)
    assert (decoded.run, decoded.epoch) == (2, 7)
    assert decoded.metrics == {"train_loss": 0.5, "test_accuracy": 0.9}
    assert decoded.layout == snapshot.layout

    metadata = parse_header(data).metadata
    assert metadata["format"] == SNAPSHOT_FORMAT
    assert metadata["experiment"] == EXPERIMENT.hex
    assert json.loads(metadata["layout"]) == [
        ["fc1.weight", [10, 90]],
        ["fc1.bias", [10]],
        ["fc2.weight", [90]],
    ]
    assert metadata["params_sha256"] == sha256_hex(snapshot.params.astype("<f4").tobytes())


def test_snapshot_params_converted_to_float32() -> None:
    as_float64 = _snapshot(params=np.linspace(-1, 1, 50))
    first = encode_snapshot(as_float64, str(EXPERIMENT))
    second = encode_snapshot(as_float64, EXPERIMENT)
    np.testing.assert_array_equal(
        decode_snapshot(first).params, np.linspace(-1, 1, 50).astype(np.float32)
    )
    # The file bytes may differ between encodings (safetensors writes the metadata in hash
    # order), but the content and its checksum do not.
    assert parse_header(first).metadata == parse_header(second).metadata


def test_snapshot_params_must_be_flat() -> None:
    with pytest.raises(ValueError, match="flat"):
        encode_snapshot(_snapshot(params=np.zeros((2, 3), np.float32)), EXPERIMENT)


def test_snapshot_file_checksum_mismatch() -> None:
    data = encode_snapshot(_snapshot(), EXPERIMENT)
    with pytest.raises(ChecksumError, match="file"):
        decode_snapshot(data, sha256_hex(data + b"x"))


def test_snapshot_flipped_params_byte_detected() -> None:
    data = _flip_param_byte(encode_snapshot(_snapshot(), EXPERIMENT), index=123)
    # Without the file checksum, the params checksum inside the object still catches it.
    with pytest.raises(ChecksumError, match="params_sha256"):
        decode_snapshot(data)


def _state() -> TrainState:
    rng = np.random.default_rng(2)
    return TrainState(
        run=1,
        epoch=4,
        params=rng.standard_normal(300).astype(np.float32),
        optimizer={
            "0.momentum_buffer": rng.standard_normal(200).astype(np.float32),
            "1.momentum_buffer": rng.standard_normal(100).astype(np.float32),
            "step": np.array([40], dtype=np.int64),
        },
        rng={
            "data": rng.integers(0, 256, 5056, dtype=np.uint8),
            "noise": rng.integers(0, 256, 16, dtype=np.uint8),
        },
    )


def test_state_round_trip() -> None:
    state = _state()
    data = encode_state(state, EXPERIMENT)
    decoded = decode_state(data)

    assert (decoded.run, decoded.epoch) == (1, 4)
    np.testing.assert_array_equal(decoded.params, state.params)
    assert decoded.optimizer.keys() == state.optimizer.keys()
    for name, value in state.optimizer.items():
        assert decoded.optimizer[name].dtype == value.dtype
        np.testing.assert_array_equal(decoded.optimizer[name], value)
    assert decoded.rng.keys() == state.rng.keys()
    for name, value in state.rng.items():
        assert decoded.rng[name].dtype == np.uint8
        np.testing.assert_array_equal(decoded.rng[name], value)
    assert parse_header(data).metadata["format"] == STATE_FORMAT


def test_state_flipped_byte_detected() -> None:
    data = encode_state(_state(), EXPERIMENT)
    header = parse_header(data)
    begin, _ = header.tensors["rng.noise"]["data_offsets"]
    corrupted = bytearray(data)
    corrupted[header.data_start + begin] ^= 0xFF
    with pytest.raises(ChecksumError):
        decode_state(bytes(corrupted))


def test_formats_are_not_interchangeable() -> None:
    with pytest.raises(ValueError, match="format"):
        decode_state(encode_snapshot(_snapshot(), EXPERIMENT))
    with pytest.raises(ValueError, match="format"):
        decode_snapshot(encode_state(_state(), EXPERIMENT))


def test_truncated_object_refused() -> None:
    data = encode_snapshot(_snapshot(), EXPERIMENT)
    with pytest.raises(ValueError, match="truncated"):
        parse_header(data[:4])
    with pytest.raises(ValueError, match="truncated"):
        parse_header(data[:20])


# --------------------------------------------------------------------------- keys


def test_keys_are_built_from_ids_only() -> None:
    hex_id = EXPERIMENT.hex
    assert experiment_prefix(EXPERIMENT) == f"experiments/{hex_id}/"
    assert snapshot_key(EXPERIMENT, 3, 12) == (
        f"experiments/{hex_id}/runs/0003/epoch-000012.safetensors"
    )
    assert (
        state_key(EXPERIMENT, 3, 12) == f"experiments/{hex_id}/runs/0003/state-000012.safetensors"
    )
    # Any spelling of the same uuid gives the same key.
    assert snapshot_key(str(EXPERIMENT), 3, 12) == snapshot_key(hex_id, 3, 12)
    assert snapshot_key(str(EXPERIMENT).upper(), 3, 12) == snapshot_key(EXPERIMENT, 3, 12)
    for key in (snapshot_key(EXPERIMENT, 0, 0), state_key(EXPERIMENT, 9999, 0)):
        assert check_key(key) == key


def test_keys_refuse_bad_ids() -> None:
    with pytest.raises(ValueError):
        snapshot_key("../../etc", 0, 0)
    with pytest.raises(ValueError):
        snapshot_key(EXPERIMENT, -1, 0)
    with pytest.raises(ValueError):
        snapshot_key(EXPERIMENT, 0, -1)
    with pytest.raises(ValueError):
        state_key(EXPERIMENT, -1, 0)


@pytest.mark.parametrize(
    "key", ["../x", "A/b", "/abs", "a//b", "a/", "", "a/../b", "a/./b", "a b", "a\\b", "é/x"]
)
def test_check_key_refuses(key: str) -> None:
    with pytest.raises(ValueError, match="invalid object key"):
        check_key(key)


def test_check_key_refuses_trailing_newline() -> None:
    with pytest.raises(ValueError, match="invalid object key"):
        check_key("experiments/abc\n")


# --------------------------------------------------------------------------- LocalStore


def test_local_store_round_trip(store: LocalStore) -> None:
    data = bytes(range(256)) * 3
    store.put("a/b/c.bin", data)
    assert store.get("a/b/c.bin") == data
    assert store.exists("a/b/c.bin")
    assert not store.exists("a/b")  # a directory is no object
    assert store.get_range("a/b/c.bin", 0, 1) == data[:1]
    assert store.get_range("a/b/c.bin", 100, 300) == data[100:300]
    assert store.get_range("a/b/c.bin", 767, 768) == data[-1:]
    assert store.get_range("a/b/c.bin", 700, 900) == data[700:]  # short past the end
    store.put("a/b/c.bin", b"replaced")
    assert store.get("a/b/c.bin") == b"replaced"


def test_local_store_missing_objects(store: LocalStore) -> None:
    assert not store.exists("no/such")
    with pytest.raises(ObjectNotFound):
        store.get("no/such")
    with pytest.raises(ObjectNotFound):
        store.get_range("no/such", 0, 1)


def test_local_store_refuses_bad_keys(store: LocalStore, tmp_path: Path) -> None:
    for key in ("../escape", "/abs", "A/b", "a//b"):
        with pytest.raises(ValueError):
            store.put(key, b"x")
        with pytest.raises(ValueError):
            store.get(key)
    assert not (tmp_path / "escape").exists()


def test_local_store_put_is_atomic_and_leaves_no_temp_files(store: LocalStore) -> None:
    for i in range(5):
        store.put(f"x/obj-{i}", b"data %d" % i)
    store.put("x/obj-0", b"overwritten")
    # A write that fails half-way (here: data that is not bytes) removes its temp file and
    # leaves the previous object intact.
    with pytest.raises(TypeError):
        store.put("x/obj-1", "not bytes")  # type: ignore[arg-type]
    names = sorted(p.name for p in store.root.rglob("*") if p.is_file())
    assert names == [f"obj-{i}" for i in range(5)]
    assert store.get("x/obj-0") == b"overwritten"
    assert store.get("x/obj-1") == b"data 1"


def test_local_store_delete_prefix(store: LocalStore) -> None:
    for run in range(3):
        for epoch in range(4):
            store.put(snapshot_key(EXPERIMENT, run, epoch), b"s")
    other = uuid.uuid4()
    store.put(snapshot_key(other, 0, 0), b"other")
    assert store.delete_prefix(f"{experiment_prefix(EXPERIMENT)}runs/0001/") == 4
    assert store.delete_prefix(experiment_prefix(EXPERIMENT)) == 8
    assert store.delete_prefix(experiment_prefix(EXPERIMENT)) == 0
    assert store.get(snapshot_key(other, 0, 0)) == b"other"


def test_local_store_ping(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "pinged")
    store.ping()
    (tmp_path / "pinged").rmdir()
    with pytest.raises(OSError):
        store.ping()


def test_snapshot_through_local_store(store: LocalStore) -> None:
    snapshot = _snapshot()
    stored = put_snapshot(store, EXPERIMENT, snapshot)
    assert stored.key == snapshot_key(EXPERIMENT, 2, 7)
    assert stored.size == len(store.get(stored.key))
    assert stored.sha256 == sha256_hex(store.get(stored.key))
    np.testing.assert_array_equal(
        get_snapshot(store, stored.key, stored.sha256).params, snapshot.params
    )
    with pytest.raises(ChecksumError):
        get_snapshot(store, stored.key, "0" * 64)


# --------------------------------------------------------------------------- StoredVector


def test_stored_vector_reads_in_order(store: LocalStore) -> None:
    snapshot = _snapshot(size=1001)
    key = put_snapshot(store, EXPERIMENT, snapshot).key
    vector = StoredVector(store, key)
    assert vector.size == 1001
    bounds = [0, 1, 400, 999, 1001]
    chunks = [vector.read(a, b) for a, b in itertools.pairwise(bounds)]
    np.testing.assert_array_equal(np.concatenate(chunks), snapshot.params)


def test_stored_vector_refuses_out_of_order_reads(store: LocalStore) -> None:
    key = put_snapshot(store, EXPERIMENT, _snapshot(size=100)).key
    vector = StoredVector(store, key)
    with pytest.raises(ValueError, match="in order"):
        vector.read(10, 20)
    vector.read(0, 50)
    with pytest.raises(ValueError, match="in order"):
        vector.read(0, 50)  # again
    with pytest.raises(ValueError, match="in order"):
        vector.read(60, 100)  # skipping
    vector.read(50, 100)


def test_stored_vector_detects_corruption_at_the_last_read(store: LocalStore) -> None:
    snapshot = _snapshot(size=100)
    data = _flip_param_byte(encode_snapshot(snapshot, EXPERIMENT), index=4 * 99)
    key = snapshot_key(EXPERIMENT, snapshot.run, snapshot.epoch)
    store.put(key, data)
    vector = StoredVector(store, key)
    vector.read(0, 50)
    with pytest.raises(ChecksumError):
        vector.read(50, 100)


def test_stored_vector_header_larger_than_probe(store: LocalStore) -> None:
    # A layout long enough to push the header past the first ranged read.
    layout = tuple((f"block{i:05d}.weight", (1,)) for i in range(3000))
    snapshot = _snapshot(size=3000, layout=layout)
    stored = put_snapshot(store, EXPERIMENT, snapshot)
    assert parse_header(store.get(stored.key)).data_start > HEADER_PROBE_BYTES
    vector = StoredVector(store, stored.key)
    np.testing.assert_array_equal(vector.read(0, 3000), snapshot.params)


def test_stored_vector_refuses_a_state_object(store: LocalStore) -> None:
    key = state_key(EXPERIMENT, 1, 0)
    store.put(key, encode_state(_state(), EXPERIMENT))
    with pytest.raises(ValueError, match="format"):
        StoredVector(store, key)

"""S3Store and open_store against a real SeaweedFS server (no mocks)."""

from __future__ import annotations

import hashlib
import itertools
import os
import uuid
from pathlib import Path

import numpy as np
import pytest
from botocore.exceptions import ClientError
from weightspace_app.infra.s3 import S3Store
from weightspace_app.infra.settings import Settings
from weightspace_app.infra.storage import open_store, store_for

from weightspace.snapshots import (
    ChecksumError,
    LocalStore,
    ObjectNotFound,
    Snapshot,
    StoredVector,
    experiment_prefix,
    get_snapshot,
    put_snapshot,
    sha256_hex,
    snapshot_key,
)

pytestmark = pytest.mark.integration

EXPERIMENT = uuid.UUID("5f0c3a1e-8d2b-4c7a-9e61-2b3d4f5a6c7d")


def _store(seaweedfs, bucket: str, **kwargs) -> S3Store:
    return S3Store(
        bucket,
        endpoint_url=seaweedfs.endpoint_url,
        access_key=seaweedfs.access_key,
        secret_key=seaweedfs.secret_key,
        region=seaweedfs.region,
        **kwargs,
    )


def test_put_get_round_trip_with_sha256_metadata(s3_store: S3Store) -> None:
    data = bytes(range(256)) * 41
    s3_store.put("experiments/abc/blob.bin", data)
    assert s3_store.get("experiments/abc/blob.bin") == data

    head = s3_store.client.head_object(Bucket=s3_store.bucket, Key="experiments/abc/blob.bin")
    assert head["Metadata"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert head["ContentType"] == "application/octet-stream"
    assert head["ContentLength"] == len(data)


def test_put_overwrites_and_empty_objects(s3_store: S3Store) -> None:
    s3_store.put("a/b", b"first")
    s3_store.put("a/b", b"second, longer")
    assert s3_store.get("a/b") == b"second, longer"
    s3_store.put("a/empty", b"")
    assert s3_store.get("a/empty") == b""
    assert s3_store.exists("a/empty")


def test_get_range(s3_store: S3Store) -> None:
    data = bytes(range(256)) * 4  # 1024 bytes
    s3_store.put("r/obj", data)
    ranges: list[bytes] = []

    def record(request, **_) -> None:
        ranges.append(request.headers.get("Range"))

    s3_store.client.meta.events.register("before-send.s3.GetObject", record)
    for start, stop in [(0, 1), (0, 1024), (1, 17), (100, 612), (1023, 1024), (512, 1024)]:
        assert s3_store.get_range("r/obj", start, stop) == data[start:stop], (start, stop)
    # HTTP ranges are inclusive: [start, stop) is sent as bytes=start-(stop-1).
    assert ranges == [
        b"bytes=0-0",
        b"bytes=0-1023",
        b"bytes=1-16",
        b"bytes=100-611",
        b"bytes=1023-1023",
        b"bytes=512-1023",
    ]
    assert s3_store.get_range("r/obj", 10, 10) == b""
    # Like a file read: past the end is short, then empty.
    assert s3_store.get_range("r/obj", 1000, 5000) == data[1000:]
    assert s3_store.get_range("r/obj", 1024, 1100) == b""
    assert s3_store.get_range("r/obj", 4096, 8192) == b""
    with pytest.raises(ValueError):
        s3_store.get_range("r/obj", 10, 5)


def test_exists_and_object_not_found(s3_store: S3Store) -> None:
    assert not s3_store.exists("missing/key")
    with pytest.raises(ObjectNotFound):
        s3_store.get("missing/key")
    with pytest.raises(ObjectNotFound):
        s3_store.get_range("missing/key", 0, 10)
    with pytest.raises(ObjectNotFound):
        s3_store.get_range("missing/key", 0, 0)
    s3_store.put("present/key", b"x")
    assert s3_store.exists("present/key")
    # A key is not a directory: its parent "present" is no object.
    assert not s3_store.exists("present")


def test_delete_prefix_paginates_and_keeps_other_keys(seaweedfs, s3_store: S3Store) -> None:
    for i in range(23):
        s3_store.put(f"experiments/aaa/runs/{i:04d}", b"%d" % i)
    s3_store.put("experiments/aab/keep", b"keep")
    s3_store.put("experiments/aaa2/keep", b"keep")
    # Pages and delete batches of 5 keys exercise both loops on a small object count.
    small_pages = _store(seaweedfs, s3_store.bucket, page_size=5)

    assert small_pages.delete_prefix("experiments/aaa/") == 23
    assert not small_pages.exists("experiments/aaa/runs/0000")
    assert s3_store.get("experiments/aab/keep") == b"keep"
    assert s3_store.get("experiments/aaa2/keep") == b"keep"
    assert s3_store.delete_prefix("experiments/aaa/") == 0
    assert s3_store.delete_prefix("") == 2
    listing = s3_store.client.list_objects_v2(Bucket=s3_store.bucket)
    assert listing.get("KeyCount", 0) == 0


def test_store_prefix_isolates_objects(seaweedfs, s3_store: S3Store) -> None:
    inner = _store(seaweedfs, s3_store.bucket, prefix="tenant/one")
    sibling = _store(seaweedfs, s3_store.bucket, prefix="tenant/one2")
    inner.put("x/y", b"inner")
    sibling.put("x/y", b"sibling")
    assert s3_store.get("tenant/one/x/y") == b"inner"
    assert inner.get("x/y") == b"inner"
    assert inner.delete_prefix("") == 1
    assert sibling.get("x/y") == b"sibling"


def test_checksum_mismatch_detected(s3_store: S3Store) -> None:
    s3_store.put("c/obj", b"original bytes")
    client = s3_store.client
    # Replace the body behind the store's back, keeping the old sha256 metadata.
    client.put_object(
        Bucket=s3_store.bucket,
        Key="c/obj",
        Body=b"tampered bytes",
        Metadata={"sha256": sha256_hex(b"original bytes")},
    )
    with pytest.raises(ChecksumError):
        s3_store.get("c/obj")
    # Objects written without the metadata (by other tools) are returned unchecked.
    client.put_object(Bucket=s3_store.bucket, Key="c/plain", Body=b"plain")
    assert s3_store.get("c/plain") == b"plain"


@pytest.mark.parametrize(
    "key", ["../x", "A/b", "/abs", "a//b", "a/", "", "a/b/../c", "a b", "a/.hidden"]
)
def test_invalid_keys_refused_before_any_request(seaweedfs, key: str) -> None:
    store = _store(seaweedfs, "ws-never-created")
    sent: list[str] = []

    def record(request, **_) -> None:
        sent.append(request.url)

    store.client.meta.events.register("before-send.s3", record)
    calls = [
        lambda: store.put(key, b"x"),
        lambda: store.get(key),
        lambda: store.get_range(key, 0, 1),
        lambda: store.exists(key),
    ]
    if key not in ("", "a/"):  # valid prefixes: everything, and everything under "a"
        calls.append(lambda: store.delete_prefix(key))
    for call in calls:
        with pytest.raises(ValueError, match="invalid object key"):
            call()
    assert sent == []


def test_invalid_store_prefix_refused() -> None:
    with pytest.raises(ValueError, match="invalid object key"):
        S3Store("bucket", prefix="../escape", endpoint_url="http://127.0.0.1:9")


def test_snapshot_round_trip_and_streaming_read(s3_store: S3Store) -> None:
    rng = np.random.default_rng(0)
    # 200 kB: larger than StoredVector's first (header) read, so every read is a real range.
    params = rng.standard_normal(50_001).astype(np.float32)
    snapshot = Snapshot(
        run=3,
        epoch=12,
        params=params,
        metrics={"train_loss": 0.25, "test_accuracy": 0.875},
        layout=(("fc.weight", (500, 100)), ("fc.bias", (1,))),
    )
    stored = put_snapshot(s3_store, EXPERIMENT, snapshot)
    assert stored.key == snapshot_key(EXPERIMENT, 3, 12)
    assert s3_store.exists(stored.key)

    loaded = get_snapshot(s3_store, stored.key, stored.sha256)
    np.testing.assert_array_equal(loaded.params, params)
    assert loaded.metrics == {"train_loss": 0.25, "test_accuracy": 0.875}
    assert loaded.layout == snapshot.layout
    assert (loaded.run, loaded.epoch) == (3, 12)

    vector = StoredVector(s3_store, stored.key)
    assert vector.size == params.size
    bounds = [0, 16_667, 33_334, params.size]
    chunks = [vector.read(a, b) for a, b in itertools.pairwise(bounds)]
    np.testing.assert_array_equal(np.concatenate(chunks), params)

    assert s3_store.delete_prefix(experiment_prefix(EXPERIMENT)) == 1
    with pytest.raises(ObjectNotFound):
        get_snapshot(s3_store, stored.key)


def test_open_store_file_url(tmp_path: Path) -> None:
    store = open_store(f"file://{tmp_path}/snapshots")
    assert isinstance(store, LocalStore)
    store.put("a/b", b"local")
    assert (tmp_path / "snapshots" / "a" / "b").read_bytes() == b"local"


def settings_of(seaweedfs) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {
        "s3_endpoint_url": seaweedfs.endpoint_url,
        "s3_access_key": seaweedfs.access_key,
        "s3_secret_key": seaweedfs.secret_key,
        "s3_region": seaweedfs.region,
    }


def test_open_store_s3_url(seaweedfs, s3_store: S3Store) -> None:
    settings = Settings(storage_url=f"s3://{s3_store.bucket}/deploy/prod", **settings_of(seaweedfs))
    store = store_for(settings)
    assert isinstance(store, S3Store)
    assert (store.bucket, store.prefix) == (s3_store.bucket, "deploy/prod")
    store.ping()
    store.put("k/v", b"through the url")
    assert s3_store.get("deploy/prod/k/v") == b"through the url"


def test_open_store_s3_url_creates_bucket(seaweedfs) -> None:
    bucket = f"ws-test-{uuid.uuid4().hex[:12]}"
    store = store_for(
        Settings(storage_url=f"s3://{bucket}", **settings_of(seaweedfs)), create_bucket=True
    )
    try:
        store.ping()
        store.put("k", b"v")
        assert store.get("k") == b"v"
    finally:
        store.delete_prefix("")
        store.client.delete_bucket(Bucket=bucket)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://host/path", "'ftp'"),
        ("/no/scheme", "''"),
        ("file://relative/path", "absolute"),
        ("file:///", "absolute"),
        ("s3:///prefix-only", "s3://bucket"),
        ("s3://key:secret@bucket/p", "s3://bucket"),
    ],
)
def test_open_store_refuses_bad_urls(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        open_store(url)


def test_ping_missing_bucket_raises(seaweedfs) -> None:
    store = _store(seaweedfs, f"ws-missing-{uuid.uuid4().hex[:12]}")
    with pytest.raises(OSError, match="not reachable"):
        store.ping()


def test_ping_wrong_credentials_raises(seaweedfs, s3_store: S3Store) -> None:
    if os.environ.get("WEIGHTSPACE_TEST_S3_ENDPOINT"):
        pytest.skip("an external S3 server may accept any credentials")
    s3_store.ping()
    store = S3Store(
        s3_store.bucket,
        endpoint_url=seaweedfs.endpoint_url,
        access_key="nobody",
        secret_key="wrong",
    )
    with pytest.raises(OSError, match="not reachable"):
        store.ping()
    with pytest.raises(ClientError, match="InvalidAccessKeyId"):
        store.get("a/b")

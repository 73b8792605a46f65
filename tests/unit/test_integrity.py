"""Downloads never complete with bad bytes: verified before the first byte or before the last."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from weightspace_app.infra.integrity import verified_chunks

from weightspace.snapshots import ChecksumError, LocalStore, ObjectNotFound

KEY = "experiments/00/runs/0000/epoch-000001.safetensors"


def stored(tmp_path: Path, data: bytes) -> LocalStore:
    store = LocalStore(tmp_path)
    store.put(KEY, data)
    return store


@pytest.mark.parametrize("chunk", [7, 1000])
def test_intact_files_stream_whole(tmp_path: Path, chunk: int) -> None:
    data = bytes(range(256)) * 3
    store = stored(tmp_path, data)
    out = b"".join(verified_chunks(store, KEY, len(data), hashlib.sha256(data).hexdigest(), chunk))
    assert out == data


def test_a_small_corrupt_file_is_refused_before_any_byte(tmp_path: Path) -> None:
    data = b"x" * 100
    store = stored(tmp_path, data)
    seen: list[str] = []
    with pytest.raises(ChecksumError):
        verified_chunks(store, KEY, 100, hashlib.sha256(b"y" * 100).hexdigest(), 1000, seen.append)
    assert seen == ["its bytes do not match their checksum"]


def test_a_large_corrupt_file_never_completes(tmp_path: Path) -> None:
    good = bytes(range(256)) * 4
    bad = bytearray(good)
    bad[700] ^= 1
    store = stored(tmp_path, bytes(bad))
    sent = b""
    with pytest.raises(ChecksumError):
        for part in verified_chunks(store, KEY, len(good), hashlib.sha256(good).hexdigest(), 100):
            sent += part
    assert len(sent) < len(good)  # the last chunk was withheld


def test_missing_and_truncated_objects(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    with pytest.raises(ObjectNotFound):
        verified_chunks(store, KEY, 10, "0" * 64, 4)
    store.put(KEY, b"short")
    with pytest.raises(ChecksumError, match="shorter"):
        b"".join(verified_chunks(store, KEY, 10, "0" * 64, 4))

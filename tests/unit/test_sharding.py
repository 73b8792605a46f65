"""The Gram sharded over parameters: shard windows read only their bytes, partial Grams cached
per shard and extended by new rows only, their sum equal to the whole Gram."""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pytest
from weightspace_app.infra.gram_store import SnapshotRef, gram_of, load_latest

from weightspace import analysis, sharding
from weightspace.snapshots import ChecksumError, LocalStore, Snapshot, StoredVector, put_snapshot

EXPERIMENT = uuid.UUID(int=11)
P = 10_001


def walk(n: int, seed: int = 0) -> list[np.ndarray]:
    """A random walk with drift, far from the origin (as trajectories are)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=P) * 2.0
    out = []
    for _ in range(n):
        x = x + 0.05 + 0.1 * rng.normal(size=P)
        out.append(x.astype(np.float32))
    return out


class RangeStore(LocalStore):
    """Counts the bytes each ranged read returns."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.read = 0

    def get_range(self, key: str, start: int, stop: int) -> bytes:
        data = super().get_range(key, start, stop)
        self.read += len(data)
        return data


def stored(store: LocalStore, params: list[np.ndarray]) -> list[SnapshotRef]:
    refs = []
    for i, p in enumerate(params):
        s = put_snapshot(store, EXPERIMENT, Snapshot(run=i % 2, epoch=i // 2, params=p))
        refs.append(SnapshotRef(i % 2, i // 2, s.key, s.sha256, {}))
    return sorted(refs, key=lambda r: (r.run, r.epoch))


def test_split_covers_every_parameter_once() -> None:
    assert sharding.split(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert sharding.split(3, 10) == [(0, 3)]
    with pytest.raises(ValueError):
        sharding.split(0, 4)


def test_window_reads_only_its_bytes(tmp_path: Path) -> None:
    store = RangeStore(tmp_path)
    (ref,) = stored(store, walk(1))
    store.read = 0
    vector = StoredVector(store, ref.key, (100, 1100))
    header_bytes = store.read
    assert vector.size == 1000
    values = np.concatenate([vector.read(0, 600), vector.read(600, 1000)])
    assert store.read - header_bytes == 1000 * 4
    expected = StoredVector(store, ref.key).read(0, P)[100:1100]
    np.testing.assert_array_equal(values, expected)
    with pytest.raises(ValueError, match="window"):
        StoredVector(store, ref.key, (5, P + 1))


def test_whole_window_still_verifies_the_checksum(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    (ref,) = stored(store, walk(1))
    path = tmp_path / ref.key
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ChecksumError):
        StoredVector(store, ref.key, (0, P)).read(0, P)


def test_sum_of_shards_equals_the_whole_gram(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    refs = stored(store, walk(8))
    whole = gram_of(store, EXPERIMENT, refs).gram.matrix
    shards = sharding.split(P, 3000)
    partials = [gram_of(store, EXPERIMENT, refs, shard=s).gram for s in shards]
    summed = sharding.combine(partials)
    assert summed.size == P
    np.testing.assert_allclose(summed.matrix, whole, rtol=1e-12, atol=1e-9 * np.abs(whole).max())
    pca_whole = analysis.pca(analysis.Gram(whole, P), 3)
    pca_sum = analysis.pca(summed, 3)
    np.testing.assert_allclose(
        pca_sum.explained_variance_ratio, pca_whole.explained_variance_ratio, rtol=1e-10
    )
    # the order of the shards is the order of the sum: the same bits every time
    again = sharding.combine([gram_of(store, EXPERIMENT, refs, shard=s).gram for s in shards])
    assert np.array_equal(again.matrix, summed.matrix)


def test_an_added_snapshot_reads_only_its_shard_rows(tmp_path: Path) -> None:
    store = RangeStore(tmp_path)
    params = walk(7)
    refs = stored(store, params)
    shard = (2000, 6000)
    first = gram_of(store, EXPERIMENT, refs[:-1], shard=shard)
    assert load_latest(store, EXPERIMENT, shard) is not None
    assert load_latest(store, EXPERIMENT) is None  # the whole Gram's cache is apart
    store.read = 0
    second = gram_of(store, EXPERIMENT, refs, shard=shard)
    # every vector's shard is read once to form the new row (its products with the others)
    assert store.read < 7 * (4 * 4000 + 70_000)
    assert second.entries[: len(first.entries)] == first.entries
    direct = analysis.gram(
        [analysis.ArrayVector(params[i][2000:6000]) for i in (0, 2, 4, 6, 1, 3, 5)]
    )
    order = [second.entries.index(r.entry) for r in refs]
    np.testing.assert_allclose(
        second.gram.subset(order).matrix, direct.matrix, rtol=1e-9, atol=1e-6
    )

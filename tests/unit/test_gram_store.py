"""The Gram cache in the object store: extended with new rows only, equal to a fresh computation."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save as np_save
from weightspace_app.infra.gram_store import DamagedSnapshot, SnapshotRef, gram_of, load_latest
from weightspace_app.usecases import analyses

from weightspace import analysis
from weightspace.imports import import_state_dict
from weightspace.snapshots import HEADER_PROBE_BYTES, LocalStore, Snapshot, put_snapshot, sha256_hex
from weightspace.spec import ExperimentSpec

EXPERIMENT = uuid.UUID(int=7)
P = 5000


def vectors(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    start = rng.normal(size=P).astype(np.float32) * 3
    return [(start + rng.normal(size=P) * 0.01 * (i + 1)).astype(np.float32) for i in range(n)]


def stored(store: LocalStore, params: list[np.ndarray], runs: int = 2) -> list[SnapshotRef]:
    refs = []
    for i, p in enumerate(params):
        run, epoch = i % runs, i // runs
        s = put_snapshot(store, EXPERIMENT, Snapshot(run=run, epoch=epoch, params=p))
        refs.append(SnapshotRef(run, epoch, s.key, s.sha256, {}))
    return refs


class CountingStore(LocalStore):
    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.bytes_read: dict[str, int] = {}
        self.gate = threading.Event()
        self.gate.set()

    def get_range(self, key: str, start: int, stop: int) -> bytes:
        self.gate.wait(30)
        data = super().get_range(key, start, stop)
        self.bytes_read[key] = self.bytes_read.get(key, 0) + len(data)
        return data


def test_extend_gram_reuses_old_rows_and_equals_a_fresh_computation() -> None:
    xs = vectors(9)
    sources = [analysis.ArrayVector(x) for x in xs]
    base = analysis.gram(sources[:6])
    extended = analysis.extend_gram(
        base,
        [analysis.ArrayVector(x) for x in xs[:6]],
        [analysis.ArrayVector(x) for x in xs[6:]],
        chunk_elements=777,
    )
    fresh = analysis.gram([analysis.ArrayVector(x) for x in xs])
    assert np.array_equal(extended.matrix[:7, :7], base.matrix)  # old rows bit for bit
    np.testing.assert_allclose(extended.matrix, fresh.matrix, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(
        analysis.pca(extended, 3).coordinates, analysis.pca(fresh, 3).coordinates, atol=1e-9
    )


def test_gram_of_extends_the_stored_matrix_with_new_snapshots_only(tmp_path: Path) -> None:
    store = CountingStore(tmp_path)
    xs = vectors(10)
    refs = stored(store, xs)
    first = gram_of(store, EXPERIMENT, refs[:6])
    assert load_latest(store, EXPERIMENT) is not None
    store.bytes_read.clear()
    second = gram_of(store, EXPERIMENT, refs)  # four snapshots arrived
    # Old rows re-used; every vector read once to form the new rows (no n^2 recomputation).
    assert second.entries[:6] == first.entries
    assert np.array_equal(second.gram.matrix[:7, :7], first.gram.matrix)
    assert all(n <= 4 * P + 2 * HEADER_PROBE_BYTES for n in store.bytes_read.values())
    fresh = analysis.gram([analysis.ArrayVector(x) for x in xs])
    np.testing.assert_allclose(second.gram.matrix, fresh.matrix, rtol=1e-12, atol=1e-9)
    # Asking again reads no snapshot at all.
    store.bytes_read.clear()
    assert gram_of(store, EXPERIMENT, refs).fingerprint == second.fingerprint
    assert store.bytes_read == {}


def test_gram_of_drops_rows_of_snapshots_that_went_away(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    xs = vectors(8)
    refs = stored(store, xs)
    gram_of(store, EXPERIMENT, refs)
    kept = [refs[i] for i in (1, 2, 3, 5, 6, 7)]
    again = gram_of(store, EXPERIMENT, kept)
    fresh = analysis.gram([analysis.ArrayVector(xs[i]) for i in (1, 2, 3, 5, 6, 7)])
    np.testing.assert_allclose(again.gram.matrix, fresh.matrix, rtol=1e-12, atol=1e-9)


def test_damaged_snapshots_are_named_and_left_out(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    xs = vectors(6)
    refs = stored(store, xs, runs=2)
    path = tmp_path / refs[3].key  # run 1, epoch 1
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x01
    path.write_bytes(bytes(data))
    (tmp_path / refs[4].key).unlink()  # run 0, epoch 2
    spec = ExperimentSpec.model_validate(
        {"dataset": {"name": "digits"}, "model": {"kind": "mlp"}, "epochs": 2, "replicas": 2}
    )
    inputs = analyses.Inputs(EXPERIMENT, spec, "succeeded", tuple(refs))
    found: list[tuple[int, int, str]] = []
    snapshots = analyses.build(store, inputs, lambda r, why: found.append((r.run, r.epoch, why)))
    assert sorted((r, e) for r, e, _ in found) == [(0, 2), (1, 1)]
    assert any("checksum" in why for *_, why in found) and any("missing" in w for *_, w in found)
    # A selection without them is answered; one with them names run and epoch.
    ok = analyses.pca(snapshots, [refs[0], refs[1], refs[2]], 1)
    assert len(ok.refs) == 3
    with pytest.raises(DamagedSnapshot, match="run 1 at epoch 1"):
        analyses.pca(snapshots, refs[:4], 1)
    with pytest.raises(DamagedSnapshot):
        analyses.trajectories(snapshots)


def test_identical_cold_requests_are_computed_once_and_shared(tmp_path: Path) -> None:
    store = CountingStore(tmp_path)
    refs = stored(store, vectors(8), runs=2)
    store.gate.clear()  # reads wait until every request has arrived
    spec = ExperimentSpec.model_validate(
        {"dataset": {"name": "digits"}, "model": {"kind": "mlp"}, "epochs": 3, "replicas": 2}
    )
    inputs = analyses.Inputs(EXPERIMENT, spec, "succeeded", tuple(refs))
    analyzer = analyses.Analyzer(store, sessions=None, workers=2)  # type: ignore[arg-type]
    # No database here: the experiment is taken to exist (the check after writing a Gram, for a
    # delete racing the analysis, is tested in tests/integration/test_delete_everywhere.py).
    analyzer.exist = lambda experiment_ids: True  # type: ignore[method-assign]
    try:
        futures = [analyzer.snapshots(inputs) for _ in range(16)]
        assert len({id(f) for f in futures}) == 1  # one computation, shared
        store.gate.set()
        first = futures[0].result(timeout=60)
        assert all(n <= 4 * P + 2 * HEADER_PROBE_BYTES for n in store.bytes_read.values())
        store.bytes_read.clear()
        again = analyzer.snapshots(inputs).result(timeout=60)  # from memory: nothing read
        assert store.bytes_read == {} and np.array_equal(again.gram.matrix, first.gram.matrix)
    finally:
        analyzer.shutdown()


def test_snapshots_no_analysis_can_use_are_named_and_left_out(tmp_path: Path) -> None:
    """NaN or infinite values (an older release or a damaged store), and finite values whose
    squares overflow float64, make a snapshot unusable: named, left out, never a wrong number."""
    store = LocalStore(tmp_path)
    xs = vectors(6)
    xs[3][[10, 20, 30]] = [np.nan, np.inf, -np.inf]  # run 1, epoch 1
    refs = stored(store, xs, runs=2)
    huge = import_state_dict(
        np_save({"w": np.full(P, 1e200)}), experiment_id=EXPERIMENT, run=0, epoch=3, metrics={}
    )
    store.put("experiments/huge.safetensors", huge.data)
    refs.append(SnapshotRef(0, 3, "experiments/huge.safetensors", sha256_hex(huge.data), {}))
    spec = ExperimentSpec.model_validate(
        {"dataset": {"name": "digits"}, "model": {"kind": "mlp"}, "epochs": 3, "replicas": 2}
    )
    inputs = analyses.Inputs(EXPERIMENT, spec, "succeeded", tuple(refs))
    found: dict[tuple[int, int], str] = {}
    snapshots = analyses.build(store, inputs, lambda r, why: found.update({(r.run, r.epoch): why}))
    assert found == {
        (1, 1): f"its parameter vector holds 3 NaN or infinite values (of {P}), "
        "which no analysis can use",
        (0, 3): "its values are too large to analyse (their squares overflow float64)",
    }
    assert np.isfinite(snapshots.gram.matrix).all()
    assert len(analyses.pca(snapshots, refs[:3], 2).refs) == 3
    with pytest.raises(DamagedSnapshot, match="run 1 at epoch 1 is damaged: its parameter vector"):
        analyses.trajectories(snapshots)
    only_bad = analyses.Inputs(EXPERIMENT, spec, "succeeded", (refs[3],))
    with pytest.raises(DamagedSnapshot, match="run 1 at epoch 1"):  # not "none captured yet"
        analyses.build(store, only_bad)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([[1.0, 2.0], [1.5, 2.5], [3.0, 1.0]], None),
        ([[1e200, 0.0], [1.0, 0.0], [2.0, 0.0]], 0),  # the reference is snapshot 0
        ([[1.0, 0.0], [2.0, 0.0], [1e200, 0.0]], 2),
        ([[1.0, 0.0], [np.nan, 0.0], [2.0, 0.0]], 1),
    ],
)
def test_first_unanalysable_snapshot(values: list[list[float]], expected: int | None) -> None:
    with np.errstate(over="ignore", invalid="ignore"):
        gram = analysis.gram([analysis.ArrayVector(np.array(v)) for v in values])
    assert gram.first_unanalysable() == expected

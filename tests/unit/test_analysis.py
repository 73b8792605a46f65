"""Tests of weightspace.analysis against scikit-learn, scipy and direct numpy computation."""

from __future__ import annotations

import json
import uuid

import numpy as np
import pytest
from scipy.spatial.distance import pdist, squareform
from sklearn.decomposition import PCA
from threadpoolctl import threadpool_limits

from weightspace.analysis import ArrayVector, Gram, gram, pca, trajectory_metrics
from weightspace.snapshots import (
    ChecksumError,
    LocalStore,
    Snapshot,
    StoredVector,
    put_snapshot,
    snapshot_key,
)

RTOL = 1e-6


@pytest.fixture(autouse=True, scope="module")
def single_blas_thread():
    """One BLAS thread: on a busy 2-core machine threaded LAPACK (eigh) runs 10x slower."""
    with threadpool_limits(limits=1):
        yield


def random_walk(n: int = 60, p: int = 20_000, seed: int = 0) -> np.ndarray:
    """float32 random walk far from the origin (offset ~10) with small steps (~1e-3)."""
    rng = np.random.default_rng(seed)
    start = 10.0 + rng.normal(0.0, 1.0, p)
    steps = rng.normal(0.0, 1e-3, (n, p))
    steps[0] = 0.0
    return (start + steps.cumsum(axis=0)).astype(np.float32)


def trained_like(n: int = 50, p: int = 20_000, seed: int = 1) -> np.ndarray:
    """Decaying noisy steps along a smooth curve, as SGD trajectories look."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 1.0, n)[:, None]
    a, b, c = rng.normal(0.0, 0.05, (3, p))
    curve = np.sqrt(t) * a + np.sin(3 * t) * b + t**2 * c
    noise = (rng.normal(0.0, 1.0, (n, p)) * (0.01 / (1.0 + np.arange(n)))[:, None]).cumsum(0)
    return (rng.normal(0.0, 0.1, p) + curve + noise).astype(np.float32)


def sources(x: np.ndarray) -> list[ArrayVector]:
    return [ArrayVector(row) for row in x]


def align_signs(reference: np.ndarray, ours: np.ndarray) -> np.ndarray:
    """Flip columns of ``reference`` to the signs of ``ours``."""
    return reference * np.where(np.sum(reference * ours, axis=0) < 0, -1.0, 1.0)


@pytest.fixture(scope="module", params=["random_walk", "trained_like"])
def trajectory(request: pytest.FixtureRequest) -> np.ndarray:
    return random_walk() if request.param == "random_walk" else trained_like()


def test_pca_matches_sklearn(trajectory: np.ndarray) -> None:
    x64 = trajectory.astype(np.float64)  # same values; keeps sklearn in float64
    skl = PCA(svd_solver="full")
    scores = skl.fit_transform(x64)
    result = pca(gram(sources(trajectory)))
    k = result.coordinates.shape[1]
    assert k == len(trajectory) - 1
    expected = align_signs(scores[:, :k], result.coordinates)
    scale = np.abs(expected).max(axis=0)
    significant = skl.explained_variance_ratio_[:k] > 1e-9
    np.testing.assert_array_less(
        (np.abs(result.coordinates - expected).max(axis=0) / scale)[significant], RTOL
    )
    np.testing.assert_allclose(
        result.explained_variance_ratio, skl.explained_variance_ratio_[:k], rtol=RTOL, atol=1e-12
    )
    np.testing.assert_allclose(
        result.explained_variance,
        skl.explained_variance_[:k],
        rtol=RTOL,
        atol=1e-12 * skl.explained_variance_[0],
    )
    np.testing.assert_allclose(
        result.singular_values,
        skl.singular_values_[:k],
        rtol=RTOL,
        atol=1e-9 * skl.singular_values_[0],
    )
    np.testing.assert_allclose(
        result.cumulative_variance_ratio, np.cumsum(skl.explained_variance_ratio_[:k]), rtol=RTOL
    )


def test_distances_norms_cosine_match_scipy(trajectory: np.ndarray) -> None:
    x64 = trajectory.astype(np.float64)
    g = gram(sources(trajectory))
    expected = squareform(pdist(x64))
    distances = g.distances()
    np.testing.assert_allclose(distances, expected, rtol=RTOL, atol=RTOL * expected.max())
    assert np.array_equal(distances, distances.T)
    assert np.all(np.diag(distances) == 0.0)
    norms = np.linalg.norm(x64, axis=1)
    np.testing.assert_allclose(g.norms(), norms, rtol=RTOL)
    np.testing.assert_allclose(g.dot(), x64 @ x64.T, rtol=RTOL)
    np.testing.assert_allclose(g.cosine(), 1.0 - squareform(pdist(x64, "cosine")), atol=1e-9)
    centered = x64 - x64.mean(axis=0)
    np.testing.assert_allclose(
        g.centered(), centered @ centered.T, atol=RTOL * np.abs(centered @ centered.T).max()
    )


def test_chunk_size_does_not_matter() -> None:
    x = trained_like(n=12, p=5_001)
    default = gram(sources(x))
    tiny = gram(sources(x), chunk_elements=7)
    np.testing.assert_allclose(tiny.matrix, default.matrix, rtol=1e-12, atol=0)
    np.testing.assert_allclose(
        pca(tiny).coordinates,
        pca(default).coordinates,
        rtol=1e-12,
        atol=1e-12 * np.abs(pca(default).coordinates).max(),
    )
    np.testing.assert_allclose(tiny.distances(), default.distances(), rtol=1e-12, atol=0)


class RecordingVector(ArrayVector):
    def __init__(self, array: np.ndarray, log: list[tuple[int, int, int]], name: int) -> None:
        super().__init__(array)
        self.log, self.name = log, name

    def read(self, start: int, stop: int) -> np.ndarray:
        self.log.append((self.name, start, stop))
        return super().read(start, stop)


def test_reads_each_source_once_chunk_by_chunk() -> None:
    x = random_walk(n=3, p=10)
    log: list[tuple[int, int, int]] = []
    gram([RecordingVector(row, log, i) for i, row in enumerate(x)], chunk_elements=4)
    assert log == [(i, a, b) for a, b in [(0, 4), (4, 8), (8, 10)] for i in range(3)]


def store_trajectory(root, x: np.ndarray) -> tuple[LocalStore, list[str]]:
    store, experiment = LocalStore(root), uuid.uuid4()
    keys = [
        put_snapshot(store, experiment, Snapshot(run=0, epoch=e, params=row)).key
        for e, row in enumerate(x)
    ]
    assert keys == [snapshot_key(experiment, 0, e) for e in range(len(x))]
    return store, keys


def test_streaming_from_local_store_matches_memory(tmp_path) -> None:
    x = random_walk(n=8, p=3_000)
    store, keys = store_trajectory(tmp_path, x)
    streamed = gram([StoredVector(store, k) for k in keys], chunk_elements=1_000)
    np.testing.assert_array_equal(streamed.matrix, gram(sources(x), chunk_elements=1_000).matrix)


def test_corrupted_stored_byte_raises(tmp_path) -> None:
    x = random_walk(n=4, p=1_000)
    store, keys = store_trajectory(tmp_path, x)
    path = store.root / keys[2]
    data = bytearray(path.read_bytes())
    data[-10] ^= 0x01  # inside the params tensor, which ends the file
    path.write_bytes(bytes(data))
    with pytest.raises(ChecksumError):
        gram([StoredVector(store, k) for k in keys], chunk_elements=300)


def test_subset_matches_recomputation() -> None:
    x = random_walk(n=20, p=4_000)
    g = gram(sources(x))
    chosen = [5, 2, 17, 11, 6]
    direct = gram(sources(x[chosen]))
    sub = g.subset(chosen)
    assert sub.n == len(chosen) and sub.size == g.size
    scale = np.abs(direct.matrix).max()
    np.testing.assert_allclose(sub.matrix, direct.matrix, rtol=1e-9, atol=1e-12 * scale)
    np.testing.assert_allclose(sub.distances(), direct.distances(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(
        pca(sub).coordinates,
        pca(direct).coordinates,
        rtol=1e-7,
        atol=1e-9 * np.abs(pca(direct).coordinates).max(),
    )


def test_dict_round_trip() -> None:
    g = gram(sources(trained_like(n=6, p=500)))
    again = Gram.from_dict(json.loads(json.dumps(g.to_dict())))
    assert again.size == g.size and again.n == g.n
    np.testing.assert_array_equal(again.matrix, g.matrix)
    assert all(isinstance(v, float) for row in g.to_dict()["matrix"] for v in row)


def test_signs_are_deterministic() -> None:
    g = gram(sources(trained_like(n=15, p=2_000)))
    first, second = pca(g), pca(g)
    np.testing.assert_array_equal(first.coordinates, second.coordinates)
    columns = first.coordinates.T
    assert all(col[np.argmax(np.abs(col))] > 0 for col in columns)
    assert pca(g, n_components=3).coordinates.shape == (15, 3)


def test_trajectory_metrics_match_numpy() -> None:
    x = trained_like(n=30, p=3_000)
    g = gram(sources(x))
    run = [3, 7, 8, 15, 16, 29]
    metrics = trajectory_metrics(g, run)
    y = x[run].astype(np.float64)
    step = np.r_[0.0, np.linalg.norm(np.diff(y, axis=0), axis=1)]
    path = np.cumsum(step)
    displacement = np.linalg.norm(y - y[0], axis=1)
    np.testing.assert_allclose(metrics.step_length, step, rtol=RTOL)
    np.testing.assert_allclose(metrics.path_length, path, rtol=RTOL)
    np.testing.assert_allclose(metrics.displacement, displacement, rtol=RTOL)
    np.testing.assert_allclose(metrics.distance_from_origin, np.linalg.norm(y, axis=1), rtol=RTOL)
    assert metrics.straightness[0] == 1.0
    np.testing.assert_allclose(metrics.straightness[1:], displacement[1:] / path[1:], rtol=RTOL)
    stuck = trajectory_metrics(gram(sources(np.ones((3, 10), np.float32))), [0, 1, 2])
    np.testing.assert_array_equal(stuck.straightness, [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(stuck.path_length, [0.0, 0.0, 0.0])


def test_errors() -> None:
    one = gram([ArrayVector(np.ones(5, np.float32))])
    with pytest.raises(ValueError, match="at least 2"):
        pca(one)
    with pytest.raises(ValueError, match="differ in size"):
        gram([ArrayVector(np.ones(5)), ArrayVector(np.ones(6))])
    with pytest.raises(ValueError):
        gram([])
    g = gram(sources(random_walk(n=4, p=50)))
    with pytest.raises(ValueError, match="n_components"):
        pca(g, n_components=4)
    with pytest.raises(ValueError, match="n_components"):
        pca(g, n_components=0)
    with pytest.raises(IndexError):
        g.subset([0, 4])
    with pytest.raises(ValueError):
        trajectory_metrics(g, [])
    with pytest.raises(ValueError):
        ArrayVector(np.ones((2, 2)))


def test_random_walk_pca_spectrum() -> None:
    """PC k of a long isotropic random walk explains ~6/(pi^2 k^2) (Antognini & Sohl-Dickstein).

    Over 20 seeds (1000 steps, 3000 dims) PC1 averaged 0.611 +- 0.0065 and PC2 0.150 +- 0.0033.
    """
    ratios = []
    for seed in range(4):
        walk = np.random.default_rng(seed).standard_normal((1000, 2000)).cumsum(axis=0)
        ratios.append(pca(gram(sources(walk)), n_components=2).explained_variance_ratio)
    mean = np.mean(ratios, axis=0)
    assert abs(mean[0] - 6 / np.pi**2) < 0.02
    assert abs(mean[1] - 6 / (np.pi**2 * 4)) < 0.01

"""Exact, streaming trajectory analysis (distances, PCA, path metrics) from one Gram matrix.

Every quantity here derives from the Gram matrix of the snapshots' parameter vectors, which
:func:`gram` accumulates in float64 while streaming the vectors chunk by chunk, so memory stays
``O(n^2 + n * chunk)`` however many parameters the model has. To keep precision when snapshots lie
far from the origin but close to each other, the Gram is taken of a reference ``r = x_0`` and the
deltas ``d_i = x_i - x_0`` rather than of the raw vectors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

#: Upper bound on the float64 working buffer of :func:`gram` when ``chunk_elements`` is not given.
DEFAULT_BUFFER_BYTES = 32 * 1024 * 1024


class VectorSource(Protocol):
    """A flat parameter vector of ``size`` elements, readable in ``[start, stop)`` slices.

    :func:`gram` reads each source once, in order; ``snapshots.StoredVector`` relies on that.
    """

    size: int

    def read(self, start: int, stop: int) -> np.ndarray: ...


class ArrayVector:
    """An in-memory vector as a :class:`VectorSource`."""

    def __init__(self, array: np.ndarray) -> None:
        self.array = np.asarray(array)
        if self.array.ndim != 1:
            raise ValueError("ArrayVector needs a 1-D array")
        self.size = int(self.array.shape[0])

    def read(self, start: int, stop: int) -> np.ndarray:
        return self.array[start:stop]


@dataclass(frozen=True, eq=False)
class Gram:
    """Gram matrix of ``[r, d_0, ..., d_{n-1}]`` with ``r = x_0`` and ``d_i = x_i - x_0``.

    Attributes
    ----------
    matrix : ndarray, shape (n + 1, n + 1)
        float64, symmetric, read-only. Row/column 0 is the reference, ``1 + i`` is ``d_i``.
    size : int
        Number of parameters ``P`` of each vector.
    """

    matrix: np.ndarray
    size: int

    def __post_init__(self) -> None:
        m = np.asarray(self.matrix, dtype=np.float64)
        if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] < 2:
            raise ValueError("Gram matrix must be square with at least 2 rows")
        m = 0.5 * (m + m.T)  # exactly symmetric
        m.flags.writeable = False
        object.__setattr__(self, "matrix", m)

    @property
    def n(self) -> int:
        """Number of snapshots."""
        return int(self.matrix.shape[0]) - 1

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form (floats round-trip exactly through ``json``)."""
        return {"size": self.size, "matrix": self.matrix.tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Gram:
        return cls(matrix=np.array(data["matrix"], dtype=np.float64), size=int(data["size"]))

    def first_unanalysable(self) -> int | None:
        """Index of the first snapshot whose entries are not finite, or so large that an
        analysis could overflow float64; ``None`` if there is none.

        Row 0 (the reference) is snapshot 0's vector, row ``1 + i`` snapshot ``i``'s delta; the
        diagonal (squared norms) tells, as no other entry exceeds it (Cauchy-Schwarz). Subsets
        and distances add up to 4 entries each, centring and PCA sum ``n`` of them: diagonal
        entries at most ``max / (64 (n + 1))`` keep all of that finite with room to spare (for
        1,000 snapshots, norms up to about 1e150).
        """
        limit = np.finfo(np.float64).max / (64 * (self.n + 1))
        fine = np.abs(np.diag(self.matrix)) <= limit  # False for NaN too
        if fine.all():
            return None
        return max(int(np.argmin(fine)) - 1, 0)

    def subset(self, indices: Sequence[int]) -> Gram:
        """Gram of snapshots ``indices`` (in that order), referenced to ``indices[0]``; no I/O.

        With ``a = indices[0]``, the new rows are ``r' = r + d_a`` and ``d'_k = d_{i_k} - d_a``;
        their inner products are sums of the old entries, in ``O(m^2)`` for ``m`` indices.
        """
        idx = _check_indices(indices, self.n)
        a = idx[0]
        rr, rd, dd = self.matrix[0, 0], self.matrix[0, 1:], self.matrix[1:, 1:]
        daa = dd[a, a]
        picked = dd[np.ix_(idx, idx)]
        to_a = dd[idx, a]
        out = np.empty((len(idx) + 1, len(idx) + 1), dtype=np.float64)
        out[0, 0] = rr + 2.0 * rd[a] + daa
        out[0, 1:] = rd[idx] - rd[a] + dd[a, idx] - daa
        out[1:, 0] = out[0, 1:]
        out[1:, 1:] = picked - to_a[:, None] - to_a[None, :] + daa
        return Gram(matrix=out, size=self.size)

    def dot(self) -> np.ndarray:
        """Raw dot products ``<x_i, x_j>``, shape (n, n)."""
        rr, rd = self.matrix[0, 0], self.matrix[0, 1:]
        out: np.ndarray = rr + rd[:, None] + rd[None, :] + self.matrix[1:, 1:]
        return out

    def norms(self) -> np.ndarray:
        """Distances from the origin ``||x_i||``, shape (n,)."""
        norms: np.ndarray = np.sqrt(np.clip(np.diag(self.dot()), 0.0, None))
        return norms

    def distances(self) -> np.ndarray:
        """Euclidean distances ``||x_i - x_j||``, shape (n, n); symmetric, zero diagonal."""
        deltas = self.matrix[1:, 1:]
        sq = np.diag(deltas)[:, None] + np.diag(deltas)[None, :] - 2.0 * deltas
        out = np.sqrt(np.clip(sq, 0.0, None))
        np.fill_diagonal(out, 0.0)
        return out

    def cosine(self) -> np.ndarray:
        """Cosine similarities of the raw vectors, shape (n, n); 0 where a vector is zero."""
        norms = self.norms()
        outer = norms[:, None] * norms[None, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.where(outer > 0, self.dot() / outer, 0.0)
        return np.clip(out, -1.0, 1.0)

    def centered(self) -> np.ndarray:
        """Double-centered Gram ``J D J`` of the deltas (``J = I - 11^T/n``), shape (n, n).

        Centering removes the reference, so this is also the centered Gram of the raw vectors.
        """
        deltas = self.matrix[1:, 1:]
        out = deltas - deltas.mean(axis=0)[None, :]
        out = out - out.mean(axis=1)[:, None]
        symmetric: np.ndarray = 0.5 * (out + out.T)
        return symmetric


def _check_indices(indices: Sequence[int], n: int) -> np.ndarray:
    idx = np.asarray(indices, dtype=np.intp).reshape(-1)
    if idx.size == 0:
        raise ValueError("indices must not be empty")
    if idx.min() < 0 or idx.max() >= n:
        raise IndexError(f"snapshot index out of range for {n} snapshots")
    return idx


def gram(sources: Sequence[VectorSource], *, chunk_elements: int | None = None) -> Gram:
    """Accumulate the reference-based Gram of ``sources`` in float64, streaming.

    Chunk ``c`` of every source is read (in order) before chunk ``c + 1``, so each source is read
    exactly once, front to back.

    Parameters
    ----------
    sources : sequence of VectorSource, length n >= 1
        Vectors of equal ``size`` P, e.g. ``ArrayVector`` or ``snapshots.StoredVector``.
    chunk_elements : int, optional
        Elements per chunk; by default the largest chunk (but at least 1024) whose float64
        buffer of shape (n + 1, chunk) fits in :data:`DEFAULT_BUFFER_BYTES`.

    Returns
    -------
    Gram
        With ``matrix`` of shape (n + 1, n + 1).
    """
    sources = list(sources)
    if not sources:
        raise ValueError("gram needs at least one vector")
    size = int(sources[0].size)
    if any(int(s.size) != size for s in sources):
        raise ValueError(f"vectors differ in size: {sorted({int(s.size) for s in sources})}")
    if size == 0:
        raise ValueError("vectors are empty")
    n = len(sources)
    if chunk_elements is None:
        chunk_elements = max(1024, DEFAULT_BUFFER_BYTES // (8 * (n + 1)))
    if chunk_elements < 1:
        raise ValueError("chunk_elements must be positive")
    chunk = min(int(chunk_elements), size)
    buffer = np.empty((n + 1, chunk), dtype=np.float64)
    total = np.zeros((n + 1, n + 1), dtype=np.float64)
    for start in range(0, size, chunk):
        stop = min(start + chunk, size)
        block = buffer[:, : stop - start]
        for i, source in enumerate(sources):
            values = source.read(start, stop)
            if values.shape != (stop - start,):
                raise ValueError(f"vector {i} returned {values.shape} for [{start}, {stop})")
            block[i + 1] = values
        block[0] = block[1]
        block[1:] -= block[0]
        total += block @ block.T  # one syrk per chunk
    return Gram(matrix=total, size=size)


def extend_gram(
    base: Gram,
    old: Sequence[VectorSource],
    new: Sequence[VectorSource],
    *,
    chunk_elements: int | None = None,
) -> Gram:
    """The Gram of ``old + new`` from ``base``, the Gram of ``old``: only the new rows are computed.

    ``base`` is re-used as it is (its entries are copied bit for bit); each chunk of every vector
    is read once, in order, to form the new rows ``<r, d_j>``, ``<d_i, d_j>`` and ``<d_j, d_k>``
    for new ``j, k``, which cost ``O((n + k) k P)`` instead of ``O((n + k)^2 P)`` from scratch.
    The reference stays ``old[0]``.
    """
    old, new = list(old), list(new)
    if len(old) != base.n:
        raise ValueError(f"base has {base.n} snapshots but {len(old)} old vectors were given")
    if not new:
        return base
    size = base.size
    if any(int(s.size) != size for s in [*old, *new]):
        raise ValueError(f"vectors differ in size from the base's {size}")
    n, k = len(old), len(new)
    if chunk_elements is None:
        chunk_elements = max(1024, DEFAULT_BUFFER_BYTES // (8 * (n + k + 1)))
    if chunk_elements < 1:
        raise ValueError("chunk_elements must be positive")
    chunk = min(int(chunk_elements), size)
    buffer = np.empty((n + k + 1, chunk), dtype=np.float64)
    cross = np.zeros((n + 1, k), dtype=np.float64)  # [r, d_old] x d_new
    inner = np.zeros((k, k), dtype=np.float64)  # d_new x d_new
    for start in range(0, size, chunk):
        stop = min(start + chunk, size)
        block = buffer[:, : stop - start]
        for i, source in enumerate([*old, *new]):
            values = source.read(start, stop)
            if values.shape != (stop - start,):
                raise ValueError(f"vector {i} returned {values.shape} for [{start}, {stop})")
            block[i + 1] = values
        block[0] = block[1]
        block[1:] -= block[0]
        fresh = block[n + 1 :]
        cross += block[: n + 1] @ fresh.T
        inner += fresh @ fresh.T
    matrix = np.empty((n + k + 1, n + k + 1), dtype=np.float64)
    matrix[: n + 1, : n + 1] = base.matrix
    matrix[: n + 1, n + 1 :] = cross
    matrix[n + 1 :, : n + 1] = cross.T
    matrix[n + 1 :, n + 1 :] = inner
    return Gram(matrix=matrix, size=size)


@dataclass(frozen=True, eq=False)
class PCAResult:
    """Principal components of a set of snapshots, as ``sklearn.decomposition.PCA`` reports them.

    Attributes
    ----------
    coordinates : ndarray, shape (n, k)
        Scores (``PCA.fit_transform``). Signs are deterministic: in each column the entry with the
        largest absolute value is positive.
    explained_variance : ndarray, shape (k,)
        Eigenvalues of the covariance (divisor ``n - 1``), descending.
    explained_variance_ratio, cumulative_variance_ratio : ndarray, shape (k,)
        Relative to the total variance over all components.
    singular_values : ndarray, shape (k,)
        Singular values of the centered data matrix.
    """

    coordinates: np.ndarray
    explained_variance: np.ndarray
    explained_variance_ratio: np.ndarray
    cumulative_variance_ratio: np.ndarray
    singular_values: np.ndarray


def pca(gram: Gram, n_components: int | None = None) -> PCAResult:
    """PCA of the snapshots via the eigendecomposition of ``gram.centered()``.

    Parameters
    ----------
    gram : Gram
        Of n >= 2 snapshots.
    n_components : int, optional
        k, at most ``min(n - 1, P)`` (the rank bound of centered data); all of them by default.

    Returns
    -------
    PCAResult
        ``coordinates`` of shape (n, k), per-component arrays of shape (k,).
    """
    n = gram.n
    if n < 2:
        raise ValueError("PCA needs at least 2 snapshots")
    max_k = min(n - 1, gram.size)
    k = max_k if n_components is None else int(n_components)
    if not 1 <= k <= max_k:
        raise ValueError(f"n_components must be in [1, {max_k}], got {n_components}")
    eigenvalues, eigenvectors = np.linalg.eigh(gram.centered())
    order = np.argsort(eigenvalues)[::-1]
    eigenvalues = np.clip(eigenvalues[order], 0.0, None)  # rounding makes tiny negatives
    singular_values = np.sqrt(eigenvalues[:k])
    coordinates = eigenvectors[:, order[:k]] * singular_values
    biggest = coordinates[np.argmax(np.abs(coordinates), axis=0), np.arange(k)]
    coordinates = coordinates * np.where(biggest < 0, -1.0, 1.0)
    variance = eigenvalues / (n - 1)
    total = variance.sum()
    ratio = variance[:k] / total if total > 0 else np.zeros(k)
    return PCAResult(
        coordinates=coordinates,
        explained_variance=variance[:k],
        explained_variance_ratio=ratio,
        cumulative_variance_ratio=np.cumsum(ratio),
        singular_values=singular_values,
    )


@dataclass(frozen=True, eq=False)
class TrajectoryMetrics:
    """Per-snapshot path metrics of one run, each an ndarray of shape (t,) in epoch order.

    ``straightness`` is ``displacement / path_length``; it is defined as 1.0 where the path length
    is 0 (the first snapshot, or a run that has not moved), so every value is a finite float.
    """

    step_length: np.ndarray
    path_length: np.ndarray
    displacement: np.ndarray
    distance_from_origin: np.ndarray
    straightness: np.ndarray


def trajectory_metrics(gram: Gram, indices: Sequence[int]) -> TrajectoryMetrics:
    """Path metrics of the run whose snapshots are ``indices`` (length t), in epoch order.

    The first snapshot is the run's initialisation, from which ``displacement`` is measured.
    """
    idx = _check_indices(indices, gram.n)
    distances = gram.distances()
    step = np.zeros(len(idx))
    step[1:] = distances[idx[:-1], idx[1:]]
    path = np.cumsum(step)
    displacement = distances[idx[0], idx]
    with np.errstate(divide="ignore", invalid="ignore"):
        straightness = np.where(path > 0, displacement / path, 1.0)
    return TrajectoryMetrics(
        step_length=step,
        path_length=path,
        displacement=displacement,
        distance_from_origin=gram.norms()[idx],
        straightness=straightness,
    )

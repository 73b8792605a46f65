"""Null models: what chance gives for each claim's statistic, simulated at the measurement's size.

A verdict is only as good as the null it rejects. The nulls here are simulated *exactly* at the
measurement's own size: the same number of snapshots, the same step lengths, and the model's own
parameter count ``P``. That is cheap whatever ``P`` is, because every statistic depends on the
vectors only through their Gram matrix, and the Gram matrix of ``m`` gaussian vectors in ``R^P`` is
a Wishart matrix that the Bartlett decomposition samples in ``O(m^2)`` operations.

- :func:`walk_null`: random walks with the measured step lengths in random directions, from the
  measured starting points (one walk per run; pooled runs give a pooled-walks null). Gives the
  explained-variance spectrum and each walk's straightness.
- :func:`sign_flip_band`: the full-batch gradient norm expected at a critical point, from the
  chunk gradients' Gram matrix by random sign flips (a permutation test of "mean gradient zero").
- :func:`confined_null`: the growth exponent of the mean squared displacement with lag for a
  process confined near a point (a stationary Ornstein-Uhlenbeck process): "stuck, jittering".
- :func:`band`: the 95% band of simulated values.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

BAND_PERCENTILES = (2.5, 97.5)
NULL_SAMPLES = 1000
NULL_SEED = 20160223  # the paper's arXiv date; any fixed seed makes the nulls reproducible
# Eigenvalues below this share of the largest are treated as zero (rank of the starting points).
RANK_TOLERANCE = 1e-10
_BATCH = 250  # walks simulated at once
LONG_WALK = 100  # steps beyond which the walk nulls use a fifth of the samples


@dataclass(frozen=True)
class Band:
    """Central 95% of a null's simulated values, with their mean and count."""

    low: float
    high: float
    mean: float
    samples: int

    def to_dict(self) -> dict[str, float | int | list[float]]:
        return {"band": [self.low, self.high], "mean": self.mean, "samples": self.samples}


def band(values: Sequence[float] | np.ndarray) -> Band:
    """The 2.5th and 97.5th percentiles of ``values`` (at least two), and their mean."""
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    if array.size < 2:
        raise ValueError("a band needs at least two values")
    low, high = np.percentile(array, BAND_PERCENTILES)
    return Band(float(low), float(high), float(array.mean()), int(array.size))


def _rng(seed: int | None) -> np.random.Generator:
    return np.random.default_rng(NULL_SEED if seed is None else seed)


def wishart_gram(
    m: int, dimension: int, rng: np.random.Generator, samples: int | None = None
) -> np.ndarray:
    """Gram matrices ``Z Z^T`` of ``m`` standard gaussian vectors in ``R^dimension``.

    Shape (m, m), or (samples, m, m) when ``samples`` is given. Sampled through the Bartlett
    decomposition when ``dimension >= m`` (cost independent of the dimension), directly otherwise.
    """
    shape = (1 if samples is None else samples, m)
    if dimension < m:
        z = rng.standard_normal((*shape, dimension))
        out = z @ np.swapaxes(z, 1, 2)
    else:
        lower = np.tril(rng.standard_normal((*shape, m)), -1)
        diagonal = np.sqrt(rng.chisquare(dimension - np.arange(m), size=shape))
        lower[:, np.arange(m), np.arange(m)] = diagonal
        out = lower @ np.swapaxes(lower, 1, 2)
    return out[0] if samples is None else out


def _start_coordinates(starts_dot: np.ndarray) -> np.ndarray:
    """Coordinates ``B`` of the starting points in an orthonormal basis of their span (B B^T = S)."""
    values, vectors = np.linalg.eigh(starts_dot)
    keep = values > RANK_TOLERANCE * max(values.max(), 0.0)
    coordinates: np.ndarray = vectors[:, keep] * np.sqrt(values[keep])
    return coordinates


def _random_steps_gram(
    lengths: np.ndarray,
    start_coords: np.ndarray,
    dimension: int,
    rng: np.random.Generator,
    samples: int,
) -> np.ndarray:
    """Gram matrices of ``[starts; steps]``, shape (samples, r + m, r + m): the starts fixed, each
    step of the given length in a uniformly random direction of ``R^dimension``, independent of
    the other steps and of the starts."""
    r, q = start_coords.shape
    m = len(lengths)
    parallel = rng.standard_normal((samples, m, q))  # the steps' components in the starts' span
    gram = parallel @ np.swapaxes(parallel, 1, 2)
    gram += wishart_gram(m, max(dimension - q, 1), rng, samples)
    norms = np.sqrt(np.clip(np.diagonal(gram, axis1=1, axis2=2), 1e-300, None))
    scale = lengths[None, :] / norms  # (samples, m)
    full = np.zeros((samples, r + m, r + m))
    full[:, :r, :r] = start_coords @ start_coords.T
    cross = np.einsum("rq,smq->srm", start_coords, parallel) * scale[:, None, :]
    full[:, :r, r:], full[:, r:, :r] = cross, np.swapaxes(cross, 1, 2)
    full[:, r:, r:] = gram * scale[:, :, None] * scale[:, None, :]
    return full


def _positions(basis: np.ndarray, step_counts: Sequence[int]) -> np.ndarray:
    """Rows of the snapshots from rows of ``[starts; steps]`` (axis -2): run r's snapshot t is
    start_r plus its first t steps. A cumulative sum, so the walk costs O(n^2) per sample."""
    runs = len(step_counts)
    blocks = []
    offset = runs
    for run, count in enumerate(step_counts):
        steps = basis[..., offset : offset + count, :]
        zero = np.zeros_like(basis[..., :1, :])
        cumulative = np.cumsum(np.concatenate([zero, steps], axis=-2), axis=-2)
        blocks.append(basis[..., run : run + 1, :] + cumulative)
        offset += count
    return np.concatenate(blocks, axis=-2)


def variance_ratios(dot: np.ndarray) -> np.ndarray:
    """Explained-variance ratios (descending) of the points whose dot products are ``dot``.

    ``dot`` has shape (n, n), or (samples, n, n) for a batch.
    """
    n = dot.shape[-1]
    centering = np.eye(n) - 1.0 / n
    values = np.clip(np.linalg.eigvalsh(centering @ dot @ centering)[..., ::-1], 0.0, None)
    total = values.sum(axis=-1, keepdims=True)
    out: np.ndarray = np.divide(values, total, out=np.zeros_like(values), where=total > 0)
    return out


def straightness(dot: np.ndarray) -> float:
    """Displacement / path length of the points (in order) whose dot products are ``dot``."""
    return float(_straightness(dot[None])[0])


def _straightness(dot: np.ndarray) -> np.ndarray:
    diag = np.diagonal(dot, axis1=1, axis2=2)
    consecutive = np.diagonal(dot, offset=1, axis1=1, axis2=2)
    steps = np.sqrt(np.clip(diag[:, 1:] + diag[:, :-1] - 2 * consecutive, 0.0, None))
    displacement = np.sqrt(np.clip(diag[:, 0] + diag[:, -1] - 2 * dot[:, 0, -1], 0.0, None))
    path = steps.sum(axis=1)
    out: np.ndarray = np.divide(displacement, path, out=np.ones_like(path), where=path > 0)
    return out


@dataclass(frozen=True)
class WalkNull:
    """Simulated walks: per sample, the pooled explained-variance ratios and each run's straightness."""

    ratios: np.ndarray  # (samples, components)
    straightness: np.ndarray  # (samples, runs)

    def cumulative(self, k: int) -> np.ndarray:
        """Share of the variance of the top ``k`` components, per sample."""
        out: np.ndarray = self.ratios[:, : min(k, self.ratios.shape[1])].sum(axis=1)
        return out


def walk_null(
    step_lengths: Sequence[Sequence[float]],
    dimension: int,
    *,
    starts_dot: np.ndarray | None = None,
    samples: int | None = None,
    seed: int | None = None,
    spectrum: bool = True,
) -> WalkNull:
    """Random walks with the measured ``step_lengths`` (one sequence per run) in random directions.

    Each run starts at its measured starting point (``starts_dot``: their dot products, shape
    (runs, runs); default: all at the origin) and takes its steps in independent, uniformly random
    directions of ``R^dimension``. The snapshots are pooled as the measured ones are, so the
    spectrum is that of the pooled walks; for one run it is the finite-n random-walk null.
    ``samples`` defaults to :data:`NULL_SAMPLES`, fewer for long walks (their statistics vary
    less, and each sample costs an eigendecomposition); ``spectrum=False`` skips the spectra.
    """
    lengths = [np.asarray(run, dtype=np.float64) for run in step_lengths]
    if not lengths or sum(len(run) for run in lengths) < 1:
        raise ValueError("a walk null needs at least one step")
    runs = len(lengths)
    starts = np.zeros((runs, runs)) if starts_dot is None else np.asarray(starts_dot, float)
    if starts.shape != (runs, runs):
        raise ValueError(f"starts_dot must be ({runs}, {runs}), got {starts.shape}")
    coords = _start_coordinates(starts) if starts.any() else np.zeros((runs, 0))
    counts = [len(run) for run in lengths]
    if samples is None:
        samples = NULL_SAMPLES if sum(counts) <= LONG_WALK else NULL_SAMPLES // 5
    bounds = np.cumsum([0] + [len(run) + 1 for run in lengths])
    rng = _rng(seed)
    ratios, straight = [], []
    for batch in np.array_split(np.arange(samples), max(1, samples // _BATCH)):
        basis = _random_steps_gram(np.concatenate(lengths), coords, dimension, rng, len(batch))
        rows = _positions(basis, counts)
        dot = np.swapaxes(_positions(np.swapaxes(rows, 1, 2), counts), 1, 2)
        ratios.append(variance_ratios(dot) if spectrum else np.zeros((len(batch), 0)))
        straight.append(
            np.stack([_straightness(dot[:, a:b, a:b]) for a, b in itertools.pairwise(bounds)], 1)
        )
    return WalkNull(np.concatenate(ratios), np.concatenate(straight))


def msd_exponent(dot: np.ndarray) -> np.ndarray | float:
    """Growth exponent of the mean squared displacement with lag: the least-squares slope of
    log MSD(L) on log L, L = 1 ... n - 1, for the points (in order) whose dot products are ``dot``.

    0 for points confined near one spot (the MSD saturates), 1 for free diffusion (a random walk),
    2 for travel at constant velocity. ``dot`` has shape (n, n), or (samples, n, n) for a batch.
    """
    batch = np.asarray(dot, dtype=np.float64)
    single = batch.ndim == 2
    batch = batch[None] if single else batch
    n = batch.shape[-1]
    if n < 3:
        raise ValueError("the MSD exponent needs 3 or more points")
    diag = np.diagonal(batch, axis1=1, axis2=2)
    squared = np.clip(diag[:, :, None] + diag[:, None, :] - 2 * batch, 0.0, None)
    lags = np.arange(1, n)
    msd = np.stack([np.diagonal(squared, lag, 1, 2).mean(axis=1) for lag in lags], axis=1)
    x = np.log(lags) - np.log(lags).mean()
    y = np.log(np.clip(msd, 1e-300, None))
    slopes: np.ndarray = ((y - y.mean(axis=1, keepdims=True)) @ x) / (x @ x)
    return float(slopes[0]) if single else slopes


def confined_null(
    points: int,
    dimension: int,
    relaxation: float,
    *,
    samples: int = NULL_SAMPLES,
    seed: int | None = None,
) -> np.ndarray:
    """MSD exponents (:func:`msd_exponent`) of ``points`` snapshots of a process confined near a
    point: a stationary Ornstein-Uhlenbeck process in ``R^dimension`` whose memory of its position
    decays by ``e`` every ``relaxation`` snapshot intervals (simulated exactly through its Gram).

    Its MSD grows until about ``relaxation`` intervals, then saturates: a process that jitters in
    a region it crosses in that time. Scale-free: the exponent does not depend on the step size.
    """
    rho = float(np.exp(-1.0 / relaxation))
    mixing = np.zeros((points, points))  # x_t = rho x_{t-1} + e_t, x_0 stationary
    mixing[0, 0] = 1.0 / np.sqrt(1.0 - rho**2)
    for t in range(1, points):
        mixing[t] = rho * mixing[t - 1]
        mixing[t, t] = 1.0
    noise = wishart_gram(points, dimension, _rng(seed), samples)
    exponents: np.ndarray = np.asarray(msd_exponent(mixing @ noise @ mixing.T))
    return exponents


def sign_flip_norms(
    chunk_dot: np.ndarray, count: int, *, samples: int = NULL_SAMPLES, seed: int | None = None
) -> np.ndarray:
    """Norms of ``sum_j s_j g_j / count`` for random signs ``s``, given ``chunk_dot = [g_i . g_j]``.

    Under the null "the expected gradient is zero" the chunk gradients ``g_j`` (sums over disjoint,
    exchangeable chunks of the training set) are symmetric about zero, so flipping their signs
    leaves the distribution of the full-batch gradient unchanged: these norms are its null.
    """
    m = chunk_dot.shape[0]
    signs = _rng(seed).choice(np.array([-1.0, 1.0]), size=(samples, m))
    squared = np.einsum("si,ij,sj->s", signs, chunk_dot, signs)
    out: np.ndarray = np.sqrt(np.clip(squared, 0.0, None)) / count
    return out


def sign_flip_band(chunk_dot: np.ndarray, count: int, **kwargs: int) -> Band:
    """95% band of the full-batch gradient norm under the sign-flip null (see :func:`sign_flip_norms`)."""
    return band(sign_flip_norms(chunk_dot, count, **kwargs))


def coefficient_of_variation(values: np.ndarray) -> float:
    mean = float(np.mean(values))
    return float(np.std(values) / mean) if mean > 0 else 0.0


def pairwise(dot: np.ndarray) -> np.ndarray:
    """Upper-triangle pairwise distances of the points whose dot products are ``dot``."""
    diag = np.diag(dot)
    squared = diag[:, None] + diag[None, :] - 2 * dot
    i, j = np.triu_indices(dot.shape[0], 1)
    out: np.ndarray = np.sqrt(np.clip(squared[i, j], 0.0, None))
    return out


def gaussian_spread(
    count: int, dimension: int, *, samples: int = NULL_SAMPLES, seed: int | None = None
) -> Mapping[str, np.ndarray]:
    """CVs of pairwise distances and of norms of ``count`` iid gaussian vectors in ``R^dimension``."""
    rng = _rng(seed)
    cv_pairs, cv_norms = [], []
    for dot in wishart_gram(count, dimension, rng, samples):
        cv_pairs.append(coefficient_of_variation(pairwise(dot)))
        cv_norms.append(coefficient_of_variation(np.sqrt(np.diag(dot))))
    return {"cv_pairwise_distance": np.asarray(cv_pairs), "cv_norm": np.asarray(cv_norms)}

"""Loss landscape planes (Li et al. 2018): train and test loss on a grid over the PC1-PC2 plane
of one run's trajectory, with the trajectory projected on it.

The plane is centred on the run's final snapshot ``c`` (the solution, as in Li et al.); its two
directions are the first two principal directions of the run's snapshots, which are also those of
the snapshots relative to ``c`` (PCA centres the data). They come from the exact Gram-matrix PCA of
:mod:`weightspace.analysis`, with its sign convention (in each component the snapshot with the
largest absolute score is positive), so the axes agree with ``GET /experiments/{id}/pca`` of the
same run. Grid point ``(a, b)`` is the model with parameters ``c + a d_1 + b d_2``.

Normalisation:

- ``none``: ``d_1, d_2`` are the unit principal directions. A snapshot's coordinates are its
  orthogonal projection ``((x - c) . d_1, (x - c) . d_2)``, which equal its PCA scores minus the
  final snapshot's.
- ``filter``: each direction is filter-normalised (Li et al. section 4): per filter (output
  channel of a convolution, output neuron of a linear layer) it is rescaled to the norm of the
  same filter of ``c``; bias directions are set to zero (Li et al.'s default, ``ignore_biasbn``).
  The directions are then neither unit nor orthogonal; a snapshot's coordinates are those of the
  point of the plane closest to it, in the basis ``(d_1, d_2)`` (least squares), so the plotted
  path is in the same coordinates as the grid. The bias part of the movement is not represented.

Every loss is with dropout off, evaluated for many grid points at once (``torch.func.vmap`` of
``functional_call`` over stacked parameters), on the first :data:`PLANE_EXAMPLES` examples of the
train and test sets (all of them when the set is smaller); the counts are in the result.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from safetensors.numpy import save as st_save
from torch import nn
from torch.func import functional_call, vmap

from weightspace.analysis import ArrayVector, gram, pca
from weightspace.data import Dataset
from weightspace.determinism import deterministic
from weightspace.models import build_model, parameter_layout
from weightspace.objective import cross_entropy, one_hot
from weightspace.spec import ExperimentSpec

Normalisation = Literal["none", "filter"]
NORMALISATIONS: tuple[Normalisation, ...] = ("none", "filter")

#: Examples of each set the grid is evaluated on (the first ones; all when the set is smaller).
PLANE_EXAMPLES = 2048
DEFAULT_RESOLUTION = 21
DEFAULT_MARGIN = 0.25
#: Grid points evaluated in one vmapped pass, and examples per pass, per device type.
POINTS_PER_PASS = {"cpu": 16, "cuda": 64}
EXAMPLES_PER_PASS = {"cpu": 512, "cuda": 4096}

Layout = Sequence[tuple[str, tuple[int, ...]]]


@dataclass(frozen=True, eq=False)
class Plane:
    """A plane through ``centre`` spanned by ``directions`` and a trajectory's place in it.

    Attributes
    ----------
    centre : ndarray, shape (P,)
    directions : ndarray, shape (2, P)
    trajectory : ndarray, shape (t, 2)
        Coordinates of the snapshots in the basis ``directions`` (see the module docstring).
    explained_variance_ratio : ndarray, shape (2,)
        Of PC1 and PC2 among the run's snapshots (before any normalisation).
    """

    centre: np.ndarray
    directions: np.ndarray
    trajectory: np.ndarray
    explained_variance_ratio: np.ndarray
    normalisation: Normalisation


def filter_normalise(direction: np.ndarray, centre: np.ndarray, layout: Layout) -> np.ndarray:
    """``direction`` rescaled per filter to the norm of ``centre``'s filter; biases zeroed.

    A filter is a slice along the first axis of a parameter with two or more axes (an output
    channel of a convolution, an output neuron of a linear layer). A zero filter of the direction
    stays zero.
    """
    out = np.zeros_like(direction, dtype=np.float64)
    start = 0
    for _, shape in layout:
        size = int(np.prod(shape))
        stop = start + size
        if len(shape) >= 2:
            d = direction[start:stop].reshape(shape[0], -1).astype(np.float64)
            w = centre[start:stop].reshape(shape[0], -1).astype(np.float64)
            norms = np.linalg.norm(d, axis=1, keepdims=True)
            scale = np.divide(
                np.linalg.norm(w, axis=1, keepdims=True),
                norms,
                out=np.zeros_like(norms),
                where=norms > 0,
            )
            out[start:stop] = (d * scale).reshape(-1)
        start = stop
    if start != direction.shape[0]:
        raise ValueError(f"layout covers {start} parameters, the vector has {direction.shape[0]}")
    return out


def filter_norms(vector: np.ndarray, layout: Layout) -> list[np.ndarray]:
    """Per parameter with two or more axes, the norm of each of its filters."""
    norms, start = [], 0
    for _, shape in layout:
        stop = start + int(np.prod(shape))
        if len(shape) >= 2:
            norms.append(np.linalg.norm(vector[start:stop].reshape(shape[0], -1), axis=1))
        start = stop
    return norms


def pca_plane(
    snapshots: Sequence[np.ndarray],
    *,
    normalisation: Normalisation = "none",
    layout: Layout | None = None,
) -> Plane:
    """The plane of PC1-PC2 of ``snapshots`` (one run, in epoch order) through the last one.

    Needs at least 3 snapshots (two components of centred data need ``n - 1 >= 2``);
    ``layout`` (names and shapes in flat order) is needed for ``normalisation="filter"``.
    """
    if len(snapshots) < 3:
        raise ValueError("a plane of two principal components needs at least 3 snapshots")
    if normalisation not in NORMALISATIONS:
        raise ValueError(f"normalisation must be one of {NORMALISATIONS}")
    if normalisation == "filter" and layout is None:
        raise ValueError("filter normalisation needs the parameter layout")
    vectors = np.stack([np.asarray(s, dtype=np.float64) for s in snapshots])
    result = pca(gram([ArrayVector(v) for v in vectors]), 2)
    # Direction k = X_c^T u_k / s_k with u_k s_k the scores, so X_c^T scores_k / s_k^2.
    centred = vectors - vectors.mean(axis=0)
    squares = result.singular_values**2
    if np.any(squares <= 0):
        raise ValueError("the snapshots do not span two dimensions (a component has no variance)")
    unit = (result.coordinates / squares).T @ centred
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)  # exactly unit despite rounding
    centre = vectors[-1]
    if normalisation == "filter":
        assert layout is not None
        directions = np.stack([filter_normalise(d, centre, layout) for d in unit])
    else:
        directions = unit
    return Plane(
        centre=centre,
        directions=directions,
        trajectory=project(vectors - centre, directions),
        explained_variance_ratio=result.explained_variance_ratio,
        normalisation=normalisation,
    )


def project(deltas: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """Least-squares coordinates (shape (t, 2)) of ``deltas`` (t, P) in the basis ``directions``
    (2, P): the orthogonal projection when the directions are orthonormal."""
    basis_gram = directions @ directions.T
    if abs(np.linalg.det(basis_gram)) <= 1e-300:
        raise ValueError("the plane's directions are linearly dependent")
    coordinates: np.ndarray = np.linalg.solve(basis_gram, directions @ deltas.T).T
    return coordinates


def grid_axis(coordinates: np.ndarray, resolution: int, margin: float) -> np.ndarray:
    """``resolution`` points symmetric about 0 reaching ``(1 + margin)`` times the largest
    absolute coordinate (1 when all are 0); an odd resolution puts the centre on the grid."""
    if resolution < 2:
        raise ValueError("a grid axis needs at least 2 points")
    reach = float(np.max(np.abs(coordinates))) if coordinates.size else 0.0
    half = (1.0 + margin) * (reach if reach > 0 else 1.0)
    axis: np.ndarray = np.linspace(-half, half, resolution)
    if resolution % 2 == 1:
        axis[resolution // 2] = 0.0
    return axis


def _stacked(
    template: nn.Module,
    centre: torch.Tensor,
    directions: torch.Tensor,
    points: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """Parameters of the grid points ``points`` (B, 2) as a dict of (B, *shape) tensors."""
    flat = centre[None, :] + points @ directions  # (B, P)
    params, start = {}, 0
    for name, p in template.named_parameters():
        stop = start + p.numel()
        params[name] = flat[:, start:stop].reshape(len(points), *p.shape)
        start = stop
    return params


def grid_losses(
    spec: ExperimentSpec,
    data: Dataset,
    plane: Plane,
    alphas: np.ndarray,
    betas: np.ndarray,
    *,
    examples: int = PLANE_EXAMPLES,
    device: str | torch.device = "cpu",
) -> tuple[np.ndarray, np.ndarray]:
    """Mean train and test loss (dropout off) at ``centre + a d_1 + b d_2``; each of shape
    ``(len(betas), len(alphas))`` (row ``j``, column ``i``: ``a = alphas[i]``, ``b = betas[j]``)."""
    device = torch.device(device)
    model = build_model(spec.model, data.input_shape, 0.0, seed=0).to(device)
    model.eval()
    centre = torch.as_tensor(plane.centre, dtype=torch.float32, device=device)
    directions = torch.as_tensor(plane.directions, dtype=torch.float32, device=device)
    b_grid, a_grid = np.meshgrid(betas, alphas, indexing="ij")
    points = torch.as_tensor(
        np.stack([a_grid.ravel(), b_grid.ravel()], axis=1), dtype=torch.float32, device=device
    )
    per_pass = POINTS_PER_PASS.get(device.type, POINTS_PER_PASS["cpu"])
    chunk = EXAMPLES_PER_PASS.get(device.type, EXAMPLES_PER_PASS["cpu"])

    def summed(params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        logits = functional_call(model, params, (x,))
        return cross_entropy(logits, y).double().sum()

    batched = vmap(summed, in_dims=(0, None, None))
    out = []
    for x_all, y_all in ((data.x_train, data.y_train), (data.x_test, data.y_test)):
        x = x_all[:examples].to(device)
        y = one_hot(y_all[:examples].to(device), data.num_classes)
        losses = torch.zeros(len(points), dtype=torch.float64, device=device)
        with deterministic(), torch.no_grad():  # the same bits whatever the thread settings
            for p in range(0, len(points), per_pass):
                params = _stacked(model, centre, directions, points[p : p + per_pass])
                for i in range(0, len(x), chunk):
                    losses[p : p + per_pass] += batched(params, x[i : i + chunk], y[i : i + chunk])
        out.append((losses / len(x)).cpu().numpy().reshape(len(betas), len(alphas)))
    return out[0], out[1]


@dataclass(frozen=True, eq=False)
class LandscapePlane:
    """Losses over a grid of a :class:`Plane`; see :func:`landscape_plane`."""

    plane: Plane
    alphas: np.ndarray  # (resolution,), the PC1 axis
    betas: np.ndarray  # (resolution,), the PC2 axis
    train_loss: np.ndarray  # (resolution, resolution), [beta index, alpha index]
    test_loss: np.ndarray
    train_examples: int
    test_examples: int

    def to_dict(self) -> dict[str, Any]:
        plane = self.plane
        return {
            "normalisation": plane.normalisation,
            "explained_variance_ratio": plane.explained_variance_ratio.tolist(),
            "alphas": self.alphas.tolist(),
            "betas": self.betas.tolist(),
            "train_loss": self.train_loss.tolist(),
            "test_loss": self.test_loss.tolist(),
            "trajectory": plane.trajectory.tolist(),
            "train_examples": self.train_examples,
            "test_examples": self.test_examples,
        }


def landscape_plane(
    spec: ExperimentSpec,
    data: Dataset,
    snapshots: Sequence[np.ndarray],
    *,
    resolution: int = DEFAULT_RESOLUTION,
    margin: float = DEFAULT_MARGIN,
    normalisation: Normalisation = "none",
    examples: int = PLANE_EXAMPLES,
    device: str | torch.device = "cpu",
) -> LandscapePlane:
    """Train and test loss on a ``resolution`` x ``resolution`` grid over the PC1-PC2 plane of one
    run's ``snapshots`` (epoch order; the last is the centre), reaching ``margin`` beyond the
    projected trajectory on each axis."""
    layout = parameter_layout(build_model(spec.model, data.input_shape, 0.0, seed=0))
    plane = pca_plane(snapshots, normalisation=normalisation, layout=layout)
    alphas = grid_axis(plane.trajectory[:, 0], resolution, margin)
    betas = grid_axis(plane.trajectory[:, 1], resolution, margin)
    train, test = grid_losses(spec, data, plane, alphas, betas, examples=examples, device=device)
    return LandscapePlane(
        plane,
        alphas,
        betas,
        train,
        test,
        train_examples=min(examples, len(data.y_train)),
        test_examples=min(examples, len(data.y_test)),
    )


#: ``format`` of a plane given out for evaluation elsewhere (:func:`plane_file`).
PLANE_FORMAT = "weightspace.plane/1"


def plane_file(
    plane: Plane,
    alphas: np.ndarray,
    betas: np.ndarray,
    *,
    dtype: np.dtype[Any],
    source_layout: str,
    buffers: dict[str, np.ndarray],
    details: dict[str, Any],
) -> bytes:
    """The plane as a safetensors file, for evaluating its grid with a model the service cannot
    build: tensors ``centre`` (P,) and ``directions`` (2, P) in ``dtype``, the final snapshot's
    kept buffers as ``buffer:<name>``, and metadata ``format``, ``layout`` (``source_layout``:
    how the flat vector splits into the state dict's tensors) and JSON ``alphas``, ``betas``,
    ``trajectory``, ``explained_variance_ratio``, ``normalisation`` and ``details``.

    Grid point ``(alphas[i], betas[j])`` is the state dict of ``centre + a d_1 + b d_2``.
    """
    tensors = {
        "centre": np.ascontiguousarray(plane.centre, dtype=dtype),
        "directions": np.ascontiguousarray(plane.directions, dtype=dtype),
        **{f"buffer:{name}": np.ascontiguousarray(value) for name, value in buffers.items()},
    }
    metadata = {
        "format": PLANE_FORMAT,
        "layout": source_layout,
        "alphas": json.dumps(alphas.tolist()),
        "betas": json.dumps(betas.tolist()),
        "trajectory": json.dumps(plane.trajectory.tolist()),
        "explained_variance_ratio": json.dumps(plane.explained_variance_ratio.tolist()),
        "normalisation": plane.normalisation,
        **{key: json.dumps(value) for key, value in details.items()},
    }
    return st_save(tensors, metadata=metadata)

"""Landscape planes on digits with a tiny MLP: the grid's centre, the projections, the norms."""

from __future__ import annotations

import numpy as np
import pytest

from weightspace import planes
from weightspace.analysis import ArrayVector, gram, pca
from weightspace.data import load_dataset
from weightspace.landscape import _load, _model
from weightspace.models import build_model, parameter_layout
from weightspace.snapshots import Snapshot, TrainState
from weightspace.spec import ExperimentSpec
from weightspace.training import Trainer, evaluate

SPEC = ExperimentSpec.model_validate(
    {
        "seed": 5,
        "dataset": {"name": "digits", "train_size": 300, "test_size": 100},
        "model": {"kind": "mlp", "hidden": [12]},
        "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9},
        "epochs": 5,
        "batch_size": 32,
        "dropout": 0.2,
        "snapshot_every": 1,
        "replicas": 1,
    }
)


@pytest.fixture(scope="module")
def trajectory() -> list[np.ndarray]:
    snapshots: list[Snapshot] = []

    def keep(snapshot: Snapshot, _state: TrainState) -> None:
        snapshots.append(snapshot)

    Trainer(SPEC, load_dataset(SPEC.dataset)).train(keep)
    return [s.params for s in sorted(snapshots, key=lambda s: s.epoch)]


def layout() -> tuple[tuple[str, tuple[int, ...]], ...]:
    data = load_dataset(SPEC.dataset)
    return parameter_layout(build_model(SPEC.model, data.input_shape, 0.0, seed=0))


def test_the_grid_centre_is_the_final_snapshots_loss(trajectory: list[np.ndarray]) -> None:
    data = load_dataset(SPEC.dataset)
    result = planes.landscape_plane(SPEC, data, trajectory, resolution=5)
    assert result.alphas[2] == 0.0 and result.betas[2] == 0.0
    model = _model(SPEC, data, "cpu")
    _load(model, trajectory[-1])
    train, _ = evaluate(model, data.x_train, data.y_train)
    test, _ = evaluate(model, data.x_test, data.y_test)
    assert result.train_loss[2, 2] == pytest.approx(train, rel=1e-5)
    assert result.test_loss[2, 2] == pytest.approx(test, rel=1e-5)
    assert result.train_examples == 300 and result.test_examples == 100
    # An off-centre grid point is the model at centre + a d1 + b d2 (row: beta, column: alpha).
    a, b = result.alphas[0], result.betas[3]
    _load(model, trajectory[-1] + a * result.plane.directions[0] + b * result.plane.directions[1])
    assert result.train_loss[3, 0] == pytest.approx(
        evaluate(model, data.x_train, data.y_train)[0], rel=1e-4
    )
    assert np.abs(result.plane.trajectory[:, 0]).max() < result.alphas.max()


def test_the_trajectory_projects_onto_its_pca_scores(trajectory: list[np.ndarray]) -> None:
    plane = planes.pca_plane(trajectory)
    reference = pca(gram([ArrayVector(v) for v in trajectory]), 2)
    expected = reference.coordinates - reference.coordinates[-1]  # same signs as GET /pca
    np.testing.assert_allclose(plane.trajectory, expected, atol=1e-6 * np.abs(expected).max())
    np.testing.assert_allclose(plane.directions @ plane.directions.T, np.eye(2), atol=1e-9)
    np.testing.assert_allclose(
        plane.explained_variance_ratio, reference.explained_variance_ratio, rtol=1e-12
    )
    assert plane.trajectory[-1] == pytest.approx([0.0, 0.0], abs=1e-9)


def test_filter_normalised_directions_have_the_centres_filter_norms(
    trajectory: list[np.ndarray],
) -> None:
    shapes = layout()
    plane = planes.pca_plane(trajectory, normalisation="filter", layout=shapes)
    centre = planes.filter_norms(plane.centre, shapes)
    for direction in plane.directions:
        norms = planes.filter_norms(direction, shapes)
        assert len(norms) == len(centre) == 2  # the two weight matrices
        for ours, theirs in zip(norms, centre, strict=True):
            np.testing.assert_allclose(ours, theirs, rtol=1e-10)
    biases = [i for i, (_, shape) in enumerate(shapes) if len(shape) == 1]
    sizes = np.cumsum([0] + [int(np.prod(s)) for _, s in shapes])
    for i in biases:
        assert not plane.directions[:, sizes[i] : sizes[i + 1]].any()
    # The trajectory is given in the (non-orthogonal) basis: least squares reproduces the
    # in-plane part of each snapshot.
    deltas = np.stack(trajectory) - plane.centre
    in_plane = plane.trajectory @ plane.directions
    residual = deltas - in_plane
    np.testing.assert_allclose(residual @ plane.directions.T, 0.0, atol=1e-6)


def test_a_plane_needs_three_snapshots_and_a_layout(trajectory: list[np.ndarray]) -> None:
    with pytest.raises(ValueError, match="at least 3"):
        planes.pca_plane(trajectory[:2])
    with pytest.raises(ValueError, match="layout"):
        planes.pca_plane(trajectory, normalisation="filter")

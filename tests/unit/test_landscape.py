"""Lines, barriers, gradient norms and the untrained-initialisation control, on a tiny MLP."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from weightspace import landscape
from weightspace.analysis import ArrayVector, gram
from weightspace.claims import ExperimentResult, barrier, relative_rise
from weightspace.data import load_dataset
from weightspace.models import build_model, flat_parameters
from weightspace.snapshots import Snapshot, TrainState
from weightspace.spec import ExperimentSpec
from weightspace.training import Trainer

SPEC = ExperimentSpec.model_validate(
    {
        "seed": 3,
        "dataset": {"name": "digits", "train_size": 300, "test_size": 100},
        "model": {"kind": "mlp", "hidden": [16]},
        "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 0.01},
        "epochs": 4,
        "batch_size": 32,
        "dropout": 0.2,
        "snapshot_every": 1,
        "replicas": 3,
    }
)


@pytest.fixture(scope="module")
def trained() -> tuple[ExperimentResult, list[Snapshot]]:
    snapshots: list[Snapshot] = []

    def keep(snapshot: Snapshot, _state: TrainState) -> None:
        snapshots.append(snapshot)

    Trainer(SPEC, load_dataset(SPEC.dataset)).train(keep)
    snapshots.sort(key=lambda s: (s.run, s.epoch))
    vectors = [s.params for s in snapshots]
    result = ExperimentResult(
        "shared-init",
        "test",
        SPEC,
        [s.run for s in snapshots],
        [s.epoch for s in snapshots],
        [dict(s.metrics) for s in snapshots],
        gram([ArrayVector(v) for v in vectors]),
        vector=vectors.__getitem__,
    )
    return result, snapshots


def test_the_line_ends_at_the_snapshots_train_and_test_losses(trained) -> None:  # type: ignore[no-untyped-def]
    _, snapshots = trained
    data = load_dataset(SPEC.dataset)
    first, last = snapshots[0], snapshots[4]
    line = landscape.loss_along_line(SPEC, data, first.params, last.params)
    assert len(line.alphas) == landscape.LINE_POINTS >= 25
    assert line.alphas[0] == 0.0 and line.alphas[-1] == 1.0
    for losses, key in ((line.train_loss, "train_loss"), (line.test_loss, "test_loss")):
        assert losses[0] == pytest.approx(first.metrics[key], rel=1e-6)
        assert losses[-1] == pytest.approx(last.metrics[key], rel=1e-6)


def test_barrier_and_rise_of_known_curves() -> None:
    alphas = np.linspace(0, 1, 25)
    assert barrier((1 + 4 * 0.3 * alphas * (1 - alphas)).tolist()) == pytest.approx(0.3)
    assert barrier((2 - alphas).tolist()) == pytest.approx(0.0, abs=1e-12)
    assert barrier((2 - alphas**0.5).tolist()) == 0.0  # convex below the chord: no barrier
    assert relative_rise([2.0, 1.0, 1.5, 0.0]) == pytest.approx(0.25)
    assert relative_rise([3.0, 2.0, 1.0]) == 0.0


def test_barriers_between_solutions_and_their_controls(trained) -> None:  # type: ignore[no-untyped-def]
    result, _ = trained
    report = landscape.barriers(result, load_dataset(SPEC.dataset))
    pairs, controls = report.of_kind("pair"), report.of_kind("control")
    assert [(p.a[0], p.b[0]) for p in pairs] == [(0, 1), (0, 2), (1, 2)]
    assert all(p.a[1] == p.b[1] == 4 for p in pairs)
    # The same-loss control: each run's own last two snapshots (epochs 3 and 4).
    assert [(c.a, c.b) for c in controls] == [((r, 3), (r, 4)) for r in range(3)]
    distances = result.gram.distances()
    finals = result.final_indices()
    assert pairs[0].distance == pytest.approx(distances[finals[0], finals[1]])
    for line in report.lines:
        assert line.train_barrier >= 0 and line.test_barrier >= 0
        assert 0 <= line.disagreement <= 1
    again = type(report).from_dict(report.to_dict())
    assert again.to_dict() == report.to_dict()


def test_barriers_evaluate_each_end_once_and_give_the_lines_own_numbers(trained) -> None:  # type: ignore[no-untyped-def]
    """Ends shared by several lines are evaluated once: every line is still exactly what
    loss_along_line and disagreement give for it alone."""
    result, _ = trained
    data = load_dataset(SPEC.dataset)
    report = landscape.barriers(result, data)
    position = {
        (run, epoch): i
        for i, (run, epoch) in enumerate(zip(result.runs, result.epochs, strict=True))
    }
    for line in report.lines:
        a, b = result.vector(position[line.a]), result.vector(position[line.b])
        alone = landscape.loss_along_line(SPEC, data, a, b)
        assert list(line.line.train_loss) == list(alone.train_loss)
        assert list(line.line.test_loss) == list(alone.test_loss)
        assert line.disagreement == landscape.disagreement(SPEC, data, a, b)


def test_disagreement_of_a_model_with_itself_is_zero(trained) -> None:  # type: ignore[no-untyped-def]
    _, snapshots = trained
    data = load_dataset(SPEC.dataset)
    assert landscape.disagreement(SPEC, data, snapshots[4].params, snapshots[4].params) == 0.0
    assert landscape.disagreement(SPEC, data, snapshots[0].params, snapshots[4].params) > 0.0


def test_gradient_norms_agree_with_autograd_on_the_whole_set(trained) -> None:  # type: ignore[no-untyped-def]
    _, snapshots = trained
    data = load_dataset(SPEC.dataset)
    params = snapshots[4].params
    model = build_model(SPEC.model, data.input_shape, SPEC.dropout, seed=0).double()
    torch.nn.utils.vector_to_parameters(
        torch.from_numpy(params.astype(np.float64)), model.parameters()
    )
    model.eval()
    loss = F.cross_entropy(model(data.x_train.double()), data.y_train)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    expected = torch.cat([g.reshape(-1) for g in grads]).numpy()
    weights = flat_parameters(model).double().numpy()
    found = landscape.gradient_norms(SPEC, data, params)
    assert found.norm == pytest.approx(np.linalg.norm(expected), rel=1e-4)
    with_decay = expected + SPEC.optimizer.weight_decay * weights
    assert found.norm_with_weight_decay == pytest.approx(np.linalg.norm(with_decay), rel=1e-4)
    assert found.chunks == landscape.GRADIENT_CHUNKS
    assert 0 < found.null.low < found.null.high
    record = found.to_dict()
    assert record["null_band"] == [found.null.low, found.null.high]


def test_the_untrained_initialisation_control() -> None:
    control = landscape.init_spread(SPEC.model, (1, 8, 8), 4, sets=10)
    assert control["cv_pairwise_distance"].shape == control["cv_norm"].shape == (10,)
    assert np.all(control["cv_pairwise_distance"] > 0)
    assert np.all(control["cv_pairwise_distance"] < 0.2)  # high dimension: nearly equal distances


def test_a_line_does_not_depend_on_how_many_threads_share_its_points(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The points of a line are spread over one thread per core: each point's numbers are the
    same whether one thread computes all of them or several share them (a CNN, channels-last)."""
    cnn = ExperimentSpec.model_validate(
        {**SPEC.model_dump(mode="json"), "model": {"kind": "cnn", "channels": [4, 8], "hidden": 16}}
    )
    data = load_dataset(cnn.dataset)
    start, end = (
        flat_parameters(build_model(cnn.model, data.input_shape, 0.0, seed=s)).numpy()
        for s in (1, 2)
    )
    lines = []
    for threads in (1, 3):
        monkeypatch.setattr(landscape, "_threads", lambda tasks, n=threads: n)
        lines.append(landscape.loss_along_line(cnn, data, start, end, points=7))
    assert lines[0].train_loss == lines[1].train_loss
    assert lines[0].test_loss == lines[1].test_loss
    assert list(lines[0].alphas) == list(np.linspace(0.0, 1.0, 7))

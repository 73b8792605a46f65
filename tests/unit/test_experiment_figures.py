"""One experiment's figures by name: each vocabulary name draws, as SVG, from plain data."""

from __future__ import annotations

import numpy as np
import pytest

from weightspace import experiment_figures
from weightspace.analysis import ArrayVector, gram
from weightspace.claims import ExperimentResult
from weightspace.figures import FigureUnavailable
from weightspace.spec import ExperimentSpec
from weightspace.vocabulary import FIGURE_NAMES

SPEC = ExperimentSpec.model_validate(
    {"dataset": {"name": "digits"}, "model": {"kind": "mlp"}, "epochs": 4}
)


def walks(runs: int, epochs: int, metrics: bool = True) -> ExperimentResult:
    rng = np.random.default_rng(0)
    vectors = np.cumsum(rng.normal(size=(runs, epochs, 200)), axis=1).reshape(-1, 200)
    losses = {"train_loss": 1.0, "test_loss": 1.2} if metrics else {}
    return ExperimentResult(
        role="",
        title="experiment 1234abcd",
        spec=SPEC,
        runs=[r for r in range(runs) for _ in range(epochs)],
        epochs=[e for _ in range(runs) for e in range(epochs)],
        metrics=[losses] * (runs * epochs),
        gram=gram([ArrayVector(v) for v in vectors]),
    )


def test_every_figure_name_has_a_drawing() -> None:
    assert tuple(experiment_figures.FIGURES) == FIGURE_NAMES


@pytest.mark.parametrize("name", FIGURE_NAMES)
def test_each_figure_is_a_self_contained_svg(name: str) -> None:
    data = experiment_figures.svg(name, walks(2, 5))  # type: ignore[arg-type]
    assert data.lstrip().startswith(b"<?xml") and b"</svg>" in data[-100:]
    assert b'href="http' not in data  # nothing to fetch


def test_uploads_without_losses_still_draw_their_dynamics() -> None:
    data = experiment_figures.svg("metrics", walks(2, 4, metrics=False))
    assert b"</svg>" in data[-100:]


def test_too_few_snapshots_are_unavailable_not_an_error() -> None:
    with pytest.raises(FigureUnavailable):
        experiment_figures.svg("pca", walks(1, 1))
    with pytest.raises(FigureUnavailable):
        experiment_figures.svg("spectrum", walks(1, 2))

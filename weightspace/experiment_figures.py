"""One experiment's figures by name, as the API serves them and its web pages show them.

Each name of :data:`weightspace.vocabulary.FIGURE_NAMES` maps to a drawing of
:mod:`weightspace.figures` (the same functions the suite report uses, given one experiment) with
the title and caption the pages print beside it. :func:`svg` draws one as self-contained SVG;
:class:`~weightspace.figures.FigureUnavailable` says when the snapshots are too few for it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from matplotlib.figure import Figure

from weightspace import figures
from weightspace.claims import ExperimentResult
from weightspace.vocabulary import FigureName

__all__ = ["FIGURES", "FigureInfo", "svg"]


@dataclass(frozen=True)
class FigureInfo:
    title: str
    caption: str
    draw: Callable[[ExperimentResult], Figure]


FIGURES: dict[FigureName, FigureInfo] = {
    "pca": FigureInfo(
        "Trajectories in PCA space",
        "Every run's snapshots projected on the top two principal components of all of them "
        "together; circles mark the first snapshot of each run, stars the last.",
        lambda result: figures.joint_pca([result]),
    ),
    "spectrum": FigureInfo(
        "Spectrum against the random-walk null",
        "Share of variance explained by each principal component (log scale), beside random walks "
        "with the same step lengths from the same starting points: the dotted line is their mean, "
        "the band their central 95%; the dashed line is the random-walk limit 6 / (\u03c0\u00b2 k\u00b2).",
        lambda result: figures.spectra([result]),
    ),
    "distances": FigureInfo(
        "Distances between the runs",
        "Euclidean distances between the runs' latest snapshots, and each one's distance from the "
        "origin |w|, in parameter units.",
        lambda result: figures.distance_heatmaps([result]),
    ),
    "metrics": FigureInfo(
        "Training dynamics",
        "Per run over epochs: train and test loss, step length per epoch, distance from the "
        "origin and from the run's first snapshot.",
        figures.dynamics,
    ),
}


def svg(name: FigureName, result: ExperimentResult) -> bytes:
    """Figure ``name`` of ``result`` as SVG bytes; raises FigureUnavailable if it cannot be drawn."""
    return figures.render(FIGURES[name].draw(result), "svg")

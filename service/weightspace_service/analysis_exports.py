"""An analysis across experiments (``AnalysisOut``) as CSV or as an SVG figure, every row named
by its experiment (its name, or the start of its id when it has none)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping

import numpy as np
from fastapi.responses import Response
from weightspace_app.access import Conflict

from weightspace import joint_figures
from weightspace.figures import FigureUnavailable, render
from weightspace_service.schemas import AnalysisOut
from weightspace_service.schemas.landscape import JointEnd
from weightspace_service.tables import render_csv

Names = Mapping[uuid.UUID, str]

PCA_EXAMPLE = "experiment,name,run,epoch,pc1,pc2\n0b7c3c1e-...,baseline,0,20,-1.5,0.25\n"


def _row(names: Names, end: JointEnd) -> joint_figures.Row:
    return joint_figures.Row(names[end.experiment], end.run, end.epoch)


def rows(body: AnalysisOut, names: Names) -> list[joint_figures.Row]:
    return [joint_figures.Row(names[s.experiment], s.run, s.epoch) for s in body.snapshots]


def csv(body: AnalysisOut, names: Names) -> Response:
    """``pca``: ``experiment,name,run,epoch,pc1..pcK``, a row per snapshot; ``distances``:
    ``experiment_a,name_a,run_a,epoch_a,experiment_b,...,distance,cosine_similarity``, a row per
    ordered pair; ``barriers``: a row per line with its ends, distance and barriers."""
    ends = ["experiment", "name", "run", "epoch"]

    def end(experiment: uuid.UUID, run: int, epoch: int) -> list[object]:
        return [experiment, names[experiment], run, epoch]

    labels = [end(s.experiment, s.run, s.epoch) for s in body.snapshots]
    if body.pca is not None:
        header = [*ends, *(f"pc{i + 1}" for i in range(body.pca.components))]
        coordinates = body.pca.coordinates
        return render_csv(
            header, ([*a, *map(repr, c)] for a, c in zip(labels, coordinates, strict=True))
        )
    if body.distances is not None:
        d = body.distances
        header = [f"{e}_a" for e in ends] + [f"{e}_b" for e in ends]
        rows_ = (
            [*a, *b, repr(d.distances[i][j]), repr(d.cosine_similarity[i][j])]
            for i, a in enumerate(labels)
            for j, b in enumerate(labels)
        )
        return render_csv([*header, "distance", "cosine_similarity"], rows_)
    assert body.barriers is not None
    header = ["kind", *(f"{e}_a" for e in ends), *(f"{e}_b" for e in ends)]
    header += ["distance", "train_barrier", "test_barrier", "disagreement"]
    lines = (
        [
            line.kind,
            *end(line.a.experiment, line.a.run, line.a.epoch),
            *end(line.b.experiment, line.b.run, line.b.epoch),
            *map(repr, (line.distance, line.train_barrier, line.test_barrier, line.disagreement)),
        ]
        for line in body.barriers.lines
    )
    return render_csv(header, lines)


def svg(body: AnalysisOut, names: Names) -> bytes:
    """The analysis's figure (see :mod:`weightspace.joint_figures`); Conflict when it has too
    few snapshots for one."""
    try:
        if body.pca is not None:
            figure = joint_figures.pca(
                rows(body, names),
                np.asarray(body.pca.coordinates),
                body.pca.explained_variance_ratio,
            )
        elif body.distances is not None:
            figure = joint_figures.distances(
                rows(body, names), np.asarray(body.distances.distances)
            )
        else:
            assert body.barriers is not None
            figure = joint_figures.barriers(
                [
                    joint_figures.BarrierLine(
                        _row(names, line.a),
                        _row(names, line.b),
                        line.line.alphas,
                        line.line.test_loss,
                        control=line.kind == "control",
                    )
                    for line in body.barriers.lines
                ]
            )
    except FigureUnavailable as error:
        raise Conflict(str(error)) from None
    return render(figure, "svg")

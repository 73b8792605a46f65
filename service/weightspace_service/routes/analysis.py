"""Analyses of an experiment's snapshots: PCA, distances, trajectory metrics."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from weightspace.adapters import experiments as usecases
from weightspace_service.deps import PrincipalDep, SessionDep, StoreDep
from weightspace_service.params import INT32_MAX, BoundedInt
from weightspace_service.problems import problem_responses
from weightspace_service.protocol import StrictJSONRoute
from weightspace_service.schemas import (
    DistancesOut,
    Metrics,
    PCAOut,
    PCAPoint,
    RunTrajectory,
    TrajectoryOut,
    TrajectoryPoint,
)

router = APIRouter(
    prefix="/experiments/{experiment_id}", tags=["analysis"], route_class=StrictJSONRoute
)


@router.get("/pca", response_model=PCAOut, responses=problem_responses(404, 409, 422))
def get_pca(
    experiment_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    store: StoreDep,
    components: Annotated[
        int, Query(ge=1, le=64, description="Number of principal components.")
    ] = 2,
    runs: Annotated[
        list[BoundedInt] | None,
        Query(max_length=64, description="Runs to include (repeatable)."),
    ] = None,
    epochs: Annotated[
        list[BoundedInt] | None,
        Query(max_length=256, description="Epochs to include (repeatable)."),
    ] = None,
) -> PCAOut:
    """Joint PCA of the selected snapshots (default: all runs, all epochs).

    Repeat `runs`/`epochs` to select several (`?runs=0&runs=2`). Signs are deterministic: in each
    component, the point with the largest absolute coordinate is positive.
    """
    experiment = usecases.get_experiment(session, principal, experiment_id)
    selection = usecases.select_snapshots(session, store, experiment, runs=runs, epochs=epochs)
    result = usecases.pca(selection, components)
    return PCAOut(
        experiment_id=experiment.id,
        complete=selection.complete,
        components=components,
        explained_variance=result.explained_variance.tolist(),
        explained_variance_ratio=result.explained_variance_ratio.tolist(),
        cumulative_variance_ratio=result.cumulative_variance_ratio.tolist(),
        points=[
            PCAPoint(run=r.run, epoch=r.epoch, coordinates=coords.tolist())
            for r, coords in zip(selection.records, result.coordinates, strict=True)
        ],
    )


@router.get("/distances", response_model=DistancesOut, responses=problem_responses(404, 409, 422))
def get_distances(
    experiment_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    store: StoreDep,
    epoch: Annotated[
        int | None,
        Query(
            ge=0,
            le=INT32_MAX,
            description="Default: the final epoch (while running, the latest epoch every run has reached).",
        ),
    ] = None,
) -> DistancesOut:
    """Run-by-run euclidean distances and cosine similarities at one epoch."""
    experiment = usecases.get_experiment(session, principal, experiment_id)
    report = usecases.distances_at(session, store, experiment, epoch)
    return DistancesOut(experiment_id=experiment.id, **report.__dict__)


@router.get("/trajectory", response_model=TrajectoryOut, responses=problem_responses(404, 409, 422))
def get_trajectory(
    experiment_id: uuid.UUID, session: SessionDep, principal: PrincipalDep, store: StoreDep
) -> TrajectoryOut:
    """Per run and snapshot: losses, accuracies, step length, path length, displacement, straightness."""
    experiment = usecases.get_experiment(session, principal, experiment_id)
    runs = [
        RunTrajectory(
            run=run,
            points=[
                TrajectoryPoint(
                    epoch=record.epoch,
                    metrics=Metrics(**record.metrics),
                    step_length=float(metrics.step_length[i]),
                    path_length=float(metrics.path_length[i]),
                    displacement=float(metrics.displacement[i]),
                    distance_from_origin=float(metrics.distance_from_origin[i]),
                    straightness=float(metrics.straightness[i]),
                )
                for i, record in enumerate(records)
            ],
        )
        for run, records, metrics in usecases.trajectories(session, store, experiment)
    ]
    return TrajectoryOut(
        experiment_id=experiment.id, complete=experiment.status == "succeeded", runs=runs
    )

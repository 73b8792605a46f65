"""Landscape planes of an experiment: the loss over the PC1-PC2 plane of a run's trajectory."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from weightspace import plane_figure
from weightspace.adapters import experiments as usecases
from weightspace.adapters import landscapes
from weightspace.adapters.experiments import Principal
from weightspace.adapters.queue import LANDSCAPE_TASK
from weightspace.figures import render
from weightspace.planes import DEFAULT_MARGIN, DEFAULT_RESOLUTION
from weightspace.snapshots import ObjectStore
from weightspace_service import jobs
from weightspace_service.deps import (
    AUTHENTICATED,
    CeleryDep,
    PrincipalDep,
    SessionDep,
    StoreDep,
)
from weightspace_service.problems import problem_responses
from weightspace_service.protocol import StrictJSONRoute
from weightspace_service.schemas import LandscapeOut, LandscapePending

router = APIRouter(
    prefix="/experiments/{experiment_id}",
    tags=["analysis"],
    route_class=StrictJSONRoute,
    dependencies=AUTHENTICATED,
    responses=problem_responses(401),
)

Run = Annotated[int, Query(ge=0, le=1023, description="The run whose trajectory spans the plane.")]
Resolution = Annotated[
    int,
    Query(
        ge=5,
        le=51,
        description="Grid points per axis (odd: the final snapshot is the middle point).",
    ),
]
Margin = Annotated[
    float,
    Query(
        ge=0.0,
        le=4.0,
        description="How far the grid reaches beyond the projected trajectory, as a share of "
        "its largest coordinate on each axis (the grid is symmetric about the final snapshot).",
    ),
]
Normalisation = Annotated[
    Literal["none", "filter"],
    Query(description="`filter`: filter-normalised directions (Li et al. 2018)."),
]
RESPONSES: dict[int | str, dict[str, Any]] = {
    **jobs.pending_responses(LandscapePending),
    **problem_responses(404, 409, 422, 503),
}


def _plane(
    session: Session,
    store: ObjectStore,
    celery: Any,
    principal: Principal,
    experiment_id: uuid.UUID,
    options: landscapes.Options,
    location: str,
) -> dict[str, Any] | JSONResponse:
    """The plane's document, or the 202 answer after making sure a worker computes it."""
    experiment = usecases.get_experiment(session, principal, experiment_id)
    landscapes.check(session, experiment, options)
    document = jobs.cached_or_queued(
        session,
        store,
        celery,
        key=options.key(experiment.id),
        owner=experiment.owner,
        experiment_id=experiment.id,
        task=LANDSCAPE_TASK,
        args=[str(experiment.id), *options.to_args()],
        queue=experiment.queue,
        stored_at=options.stored_at(experiment.id),
    )
    if document is None:
        pending = LandscapePending(
            experiment_id=experiment.id,
            status="queued",
            detail="the plane is being computed by a worker",
        )
        return jobs.accepted(pending, location)
    return document


def _location(path: str, options: landscapes.Options) -> str:
    return (
        f"{path}?run={options.run}&resolution={options.resolution}"
        f"&margin={options.margin!r}&normalisation={options.normalisation}"
    )


@router.get("/landscape", response_model=LandscapeOut, responses=RESPONSES)
def get_landscape(
    experiment_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    store: StoreDep,
    celery: CeleryDep,
    run: Run = 0,
    resolution: Resolution = DEFAULT_RESOLUTION,
    margin: Margin = DEFAULT_MARGIN,
    normalisation: Normalisation = "none",
) -> LandscapeOut | JSONResponse:
    """Train and test loss (dropout off) on a grid over the plane of PC1 and PC2 of one run's
    trajectory, centred on its final snapshot (Li et al. 2018), with the trajectory projected
    on it.

    Only for experiments the service trained (uploads have no model: 409). The first request
    queues a worker job and answers 202 with a `Location` to poll; once computed, the plane is
    cached and answered with 200.
    """
    options = landscapes.Options(run, resolution, margin, normalisation)
    location = _location(f"/experiments/{experiment_id}/landscape", options)
    answer = _plane(session, store, celery, principal, experiment_id, options, location)
    if isinstance(answer, JSONResponse):
        return answer
    return LandscapeOut(experiment_id=experiment_id, status="ready", **answer)


@router.get(
    "/landscape.svg",
    response_class=Response,
    responses={
        200: {"content": {"image/svg+xml": {}}, "description": "The figure"},
        **RESPONSES,
    },
)
async def get_landscape_svg(
    experiment_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    store: StoreDep,
    celery: CeleryDep,
    run: Run = 0,
    resolution: Resolution = DEFAULT_RESOLUTION,
    margin: Margin = DEFAULT_MARGIN,
    normalisation: Normalisation = "none",
) -> Response:
    """The plane of `GET /experiments/{id}/landscape` as an SVG figure: contours of the log train
    and test loss with the projected trajectory (202 while a worker computes it)."""
    options = landscapes.Options(run, resolution, margin, normalisation)
    location = _location(f"/experiments/{experiment_id}/landscape.svg", options)
    answer = await run_in_threadpool(
        _plane, session, store, celery, principal, experiment_id, options, location
    )
    if isinstance(answer, JSONResponse):
        return answer
    svg = await run_in_threadpool(lambda: render(plane_figure.landscape_plane(answer), "svg"))
    return Response(svg, media_type="image/svg+xml")

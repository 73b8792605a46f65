"""Landscape planes of an experiment: the loss over the PC1-PC2 plane of a run's trajectory."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Response
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from weightspace_app.access import Principal
from weightspace_app.infra.queue import LANDSCAPE_TASK
from weightspace_app.usecases import experiments as usecases
from weightspace_app.usecases import landscapes

from weightspace import plane_figure
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
from weightspace_service.schemas import LandscapeEvaluation, LandscapeOut, LandscapePending

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
EVALUATION_EXAMPLES = {
    "train-and-test": {
        "summary": "Losses over a 5 x 5 grid on two data sets",
        "value": {
            "train_loss": [[2.1, 1.4, 1.2, 1.5, 2.3]] * 5,
            "test_loss": [[2.2, 1.5, 1.3, 1.6, 2.4]] * 5,
            "train_examples": 1000,
            "test_examples": 200,
        },
    }
}
RESPONSES: dict[int | str, dict[str, Any]] = {
    **jobs.pending_responses(LandscapePending),
    **problem_responses(404, 409, 422, 503),
}


def _options(
    run: Run = 0,
    resolution: Resolution = DEFAULT_RESOLUTION,
    margin: Margin = DEFAULT_MARGIN,
    normalisation: Normalisation = "none",
) -> landscapes.Options:
    """The plane's query parameters, shared by every landscape route."""
    return landscapes.Options(run, resolution, margin, normalisation)


PlaneOptions = Annotated[landscapes.Options, Depends(_options)]


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
    if (evaluated := landscapes.evaluated(store, experiment, options)) is not None:
        return evaluated
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
    options: PlaneOptions,
) -> LandscapeOut | JSONResponse:
    """Train and test loss (dropout off) on a grid over the plane of PC1 and PC2 of one run's
    trajectory, centred on its final snapshot (Li et al. 2018), with the trajectory projected
    on it.

    For experiments the service trained and uploads that declare a `model`; for other uploads,
    the plane their client evaluated (`PUT`), else 409 saying how to evaluate it. The first
    request queues a worker job and answers 202 with a `Location` to poll; once computed, the
    plane is cached and answered with 200.
    """
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
    options: PlaneOptions,
) -> Response:
    """The plane of `GET /experiments/{id}/landscape` as an SVG figure: contours of the log train
    and test loss with the projected trajectory (202 while a worker computes it)."""
    location = _location(f"/experiments/{experiment_id}/landscape.svg", options)
    answer = await run_in_threadpool(
        _plane, session, store, celery, principal, experiment_id, options, location
    )
    if isinstance(answer, JSONResponse):
        return answer
    svg = await run_in_threadpool(lambda: render(plane_figure.landscape_plane(answer), "svg"))
    return Response(svg, media_type="image/svg+xml")


@router.get(
    "/landscape/plane",
    response_class=Response,
    responses={
        200: {
            "content": {"application/octet-stream": {}},
            "description": "The plane as a safetensors file",
        },
        **problem_responses(404, 409, 422, 503),
    },
)
def get_landscape_plane(
    experiment_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    store: StoreDep,
    options: PlaneOptions,
) -> Response:
    """The plane of `GET /experiments/{id}/landscape`, to evaluate with your own model: a
    safetensors file with `centre` (P) and `directions` (2, P), the final snapshot's buffers as
    `buffer:<name>`, and metadata `layout` (how the flat vector splits into the state dict's
    tensors), `alphas`, `betas`, `trajectory`, `explained_variance_ratio`, `normalisation`,
    `run`, `epochs` (JSON). Grid point `(alphas[i], betas[j])` is `centre + a d1 + b d2`; send
    the losses with `PUT /experiments/{id}/landscape` (the client's
    `weightspace_client.planes.evaluate` does both)."""
    experiment = usecases.get_experiment(session, principal, experiment_id)
    data = landscapes.plane(session, store, experiment, options)
    return Response(data, media_type="application/octet-stream")


@router.put("/landscape", response_model=LandscapeOut, responses=problem_responses(404, 409, 422))
def put_landscape(
    experiment_id: uuid.UUID,
    losses: Annotated[LandscapeEvaluation, Body(openapi_examples=EVALUATION_EXAMPLES)],
    session: SessionDep,
    principal: PrincipalDep,
    store: StoreDep,
    options: PlaneOptions,
) -> LandscapeOut:
    """Store the losses your client evaluated over the grid of
    `GET /experiments/{id}/landscape/plane` (same parameters, given out first) as the
    experiment's landscape: served by `GET .../landscape` and drawn by `GET .../landscape.svg`
    like one the service computed (`evaluated_by: client`). Only for uploads that declare no
    model (409 otherwise); sending again replaces it."""
    experiment = usecases.get_experiment(session, principal, experiment_id)
    document = landscapes.save_evaluated(session, store, experiment, options, losses.model_dump())
    return LandscapeOut(experiment_id=experiment.id, status="ready", **document)

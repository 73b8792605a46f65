"""An experiment's figures as SVG: PCA, spectrum against the random-walk null, distances, metrics."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response
from starlette.concurrency import run_in_threadpool
from weightspace_app.usecases import analyses

from weightspace.vocabulary import FigureName
from weightspace_service.deps import (
    AUTHENTICATED,
    FigureMakerDep,
    PrincipalDep,
    SessionsDep,
)
from weightspace_service.problems import problem_responses
from weightspace_service.protocol import StrictJSONRoute

SVG = "image/svg+xml"
router = APIRouter(
    prefix="/experiments/{experiment_id}/figures",
    tags=["analysis"],
    route_class=StrictJSONRoute,
    dependencies=AUTHENTICATED,
    responses=problem_responses(401),
)


@router.get(
    "/{figure}.svg",
    response_class=Response,
    responses={
        200: {
            "description": "The figure, a self-contained SVG document (text drawn as paths)",
            "content": {SVG: {"schema": {"type": "string"}}},
        },
        **problem_responses(404, 409, 422),
    },
)
async def get_figure(
    experiment_id: uuid.UUID,
    figure: FigureName,
    sessions: SessionsDep,
    principal: PrincipalDep,
    maker: FigureMakerDep,
) -> Response:
    """One figure of the experiment, drawn from its snapshots.

    `pca`: the runs' trajectories in the plane of their joint top two principal components;
    `spectrum`: explained variance per component beside random walks with the same steps;
    `distances`: distances between the runs' latest snapshots; `metrics`: losses, step lengths
    and distances per epoch. While the experiment runs, the figures show the epochs every run
    has reached; a failed one answers 409 with its cause.
    """
    inputs = await run_in_threadpool(analyses.load_inputs, sessions, principal, experiment_id)
    data = await run_in_threadpool(maker.svg, inputs, figure)
    return Response(data, media_type=SVG, headers={"Cache-Control": "private, no-cache"})

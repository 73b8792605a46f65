"""An analysis across experiments as CSV or as an SVG figure (``GET /analyses/{id}/...``)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from weightspace_app.access import Principal
from weightspace_app.usecases.experiments import display_names

from weightspace_service import analysis_exports, tables
from weightspace_service.deps import (
    AUTHENTICATED,
    PrincipalDep,
    SessionsDep,
)
from weightspace_service.problems import problem_responses
from weightspace_service.protocol import StrictJSONRoute
from weightspace_service.routes import joint
from weightspace_service.schemas import AnalysisOut

router = APIRouter(
    prefix="/analyses",
    tags=["analysis"],
    route_class=StrictJSONRoute,
    dependencies=AUTHENTICATED,
    responses=problem_responses(401),
)
SVG = "image/svg+xml"
ERRORS = problem_responses(404, 409, 422, 503)


#: ``GET /analyses/{id}``'s answer, as the route computes it (200, or 202 while running).
AnalysisAnswer = Annotated[JSONResponse, Depends(joint.get_analysis)]


async def _finished(
    answer: JSONResponse, here: str, sessions: sessionmaker[Session], principal: Principal
) -> tuple[AnalysisOut, dict[uuid.UUID, str]] | JSONResponse:
    """The finished analysis and its experiments' names, or its 202 (polling ``here``)."""
    if answer.status_code == 202:
        answer.headers["Location"] = here
        return answer
    body = AnalysisOut.model_validate_json(bytes(answer.body))

    def names() -> dict[uuid.UUID, str]:
        with sessions() as session:
            return display_names(session, principal, (s.experiment for s in body.snapshots))

    return body, await run_in_threadpool(names)


@router.get(
    "/{analysis_id}/table.csv",
    response_class=Response,
    responses={
        **tables.csv_response(
            "The analysis as CSV, every row named by its experiment",
            analysis_exports.PCA_EXAMPLE,
        ),
        **joint.PENDING,
        **ERRORS,
    },
)
async def get_analysis_csv(
    analysis_id: uuid.UUID,
    answer: AnalysisAnswer,
    sessions: SessionsDep,
    principal: PrincipalDep,
) -> Response:
    """The analysis as CSV: `pca` a row per snapshot (`experiment,name,run,epoch,pc1,...`),
    `distances` a row per ordered pair of snapshots, `barriers` a row per line. 202 while it is
    computed, as `GET /analyses/{id}`."""
    found = await _finished(answer, f"/analyses/{analysis_id}/table.csv", sessions, principal)
    return found if isinstance(found, JSONResponse) else analysis_exports.csv(*found)


@router.get(
    "/{analysis_id}/figure.svg",
    response_class=Response,
    responses={
        200: {
            "description": "The analysis's figure, a self-contained SVG document",
            "content": {SVG: {"schema": {"type": "string"}}},
        },
        **joint.PENDING,
        **ERRORS,
    },
)
async def get_analysis_svg(
    analysis_id: uuid.UUID,
    answer: AnalysisAnswer,
    sessions: SessionsDep,
    principal: PrincipalDep,
) -> Response:
    """The analysis drawn, each snapshot named by its experiment: `pca` the runs' paths in the
    joint PC1-PC2 plane (axes to scale), `distances` the distance matrix, `barriers` the test
    loss along each line. 202 while it is computed; 409 when it has too few snapshots."""
    found = await _finished(answer, f"/analyses/{analysis_id}/figure.svg", sessions, principal)
    if isinstance(found, JSONResponse):
        return found
    data = await run_in_threadpool(analysis_exports.svg, *found)
    return Response(data, media_type=SVG)

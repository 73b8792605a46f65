"""Analyses across experiments: one PCA basis or distance matrix for snapshots of several."""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import Future
from typing import Annotated, Any

from fastapi import APIRouter, Body
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from weightspace.adapters import analyses, joint
from weightspace.adapters.experiments import Principal
from weightspace.snapshots import ObjectStore
from weightspace_service.deps import AUTHENTICATED, AnalyzerDep, PrincipalDep, SessionsDep, StoreDep
from weightspace_service.problems import problem_responses
from weightspace_service.protocol import StrictJSONRoute
from weightspace_service.schemas import (
    ANALYSIS_EXAMPLES,
    AnalysisIn,
    AnalysisOut,
    JointDistances,
    JointPCA,
    JointSnapshot,
)

router = APIRouter(
    prefix="/analyses",
    tags=["analysis"],
    route_class=StrictJSONRoute,
    dependencies=AUTHENTICATED,
    responses=problem_responses(401),
)

#: How long a request waits for its answer before it is answered 202 with a URL to poll.
WAIT_SECONDS = 1.0
PENDING: dict[int | str, dict[str, Any]] = {
    202: {
        "model": AnalysisOut,
        "description": "Being computed: poll the `Location` (status `running`)",
        "headers": {"Location": {"schema": {"type": "string"}, "description": "Where to poll"}},
    }
}


async def _answer(
    analysis_id: uuid.UUID,
    request: joint.Request,
    sessions: sessionmaker[Session],
    store: ObjectStore,
    principal: Principal,
    analyzer: analyses.Analyzer,
) -> JSONResponse:
    resolved = await run_in_threadpool(joint.resolve, sessions, store, principal, request)
    future: Future[analyses.Snapshots] = analyzer.snapshots(resolved.inputs)
    done, _ = await asyncio.wait([asyncio.wrap_future(future)], timeout=WAIT_SECONDS)
    location = f"/analyses/{analysis_id}"
    labels = [JointSnapshot.of(resolved.label(r)) for r in resolved.chosen]
    body = AnalysisOut(
        id=analysis_id,
        kind=request.kind,
        status="running",
        complete=resolved.inputs.complete,
        snapshots=labels,
        links={"self": location},
    )
    if not done:
        return JSONResponse(
            body.model_dump(mode="json"),
            status_code=202,
            headers={"Location": location, "Retry-After": "1"},
        )
    snapshots = future.result()  # raises what the computation raised (damaged snapshot, ...)
    if request.kind == "pca":
        report = await asyncio.wrap_future(
            analyzer.submit(joint.pca, snapshots, resolved, request.components)
        )
        body.pca = JointPCA.of(report.result)
    else:
        matrix = await asyncio.wrap_future(analyzer.submit(joint.distances, snapshots, resolved))
        body.distances = JointDistances.of(matrix)
    body.status = "succeeded"
    return JSONResponse(body.model_dump(mode="json"), headers={"Location": location})


@router.post(
    "",
    response_model=AnalysisOut,
    responses={**PENDING, **problem_responses(404, 409, 422)},
)
async def create_analysis(
    body: Annotated[AnalysisIn, Body(openapi_examples=ANALYSIS_EXAMPLES)],
    sessions: SessionsDep,
    store: StoreDep,
    principal: PrincipalDep,
    analyzer: AnalyzerDep,
) -> JSONResponse:
    """PCA or distances of snapshots selected from several experiments of one parameter layout.

    Answered at once (200) when the Gram matrix of the selection is cached or quick to compute;
    otherwise 202 with a `Location` to poll. Exact like the per-experiment endpoints (the same
    Gram machinery); rows follow the selection's order (experiment, then run and epoch).
    """
    request = body.to_request()
    analysis_id = await run_in_threadpool(joint.save_request, sessions, store, principal, request)
    return await _answer(analysis_id, request, sessions, store, principal, analyzer)


@router.get(
    "/{analysis_id}",
    response_model=AnalysisOut,
    responses={**PENDING, **problem_responses(404, 409, 422)},
)
async def get_analysis(
    analysis_id: uuid.UUID,
    sessions: SessionsDep,
    store: StoreDep,
    principal: PrincipalDep,
    analyzer: AnalyzerDep,
) -> JSONResponse:
    """The analysis (200), or 202 while it is being computed."""
    request = await run_in_threadpool(joint.load_request, store, principal, analysis_id)
    return await _answer(analysis_id, request, sessions, store, principal, analyzer)

"""Analyses across experiments: one PCA basis or distance matrix for snapshots of several."""

from __future__ import annotations

import asyncio
import functools
import uuid
from concurrent.futures import Future
from typing import Annotated

from celery import Celery
from fastapi import APIRouter, Body
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from weightspace_app.access import Principal
from weightspace_app.infra.queue import JOINT_BARRIERS_TASK
from weightspace_app.infra.settings import Settings
from weightspace_app.usecases import analyses, joint, joint_barriers, sharded

from weightspace.snapshots import ObjectStore
from weightspace_service import jobs
from weightspace_service.deps import (
    AUTHENTICATED,
    AnalyzerDep,
    CeleryDep,
    PrincipalDep,
    SessionsDep,
    SettingsDep,
    StoreDep,
)
from weightspace_service.problems import problem_responses
from weightspace_service.protocol import StrictJSONRoute
from weightspace_service.schemas import (
    ANALYSIS_EXAMPLES,
    AnalysisIn,
    AnalysisOut,
    JointBarriers,
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
PENDING = jobs.pending_responses(AnalysisOut)


async def _answer(
    analysis_id: uuid.UUID,
    request: joint.Request,
    sessions: sessionmaker[Session],
    store: ObjectStore,
    principal: Principal,
    analyzer: analyses.Analyzer,
    celery: Celery,
    settings: Settings,
) -> JSONResponse:
    resolved = await run_in_threadpool(joint.resolve, sessions, store, principal, request)
    if request.kind == "barriers":
        return await run_in_threadpool(
            _barriers, analysis_id, request, resolved, sessions, store, principal, celery
        )
    offloaded = functools.partial(
        jobs.on_workers,
        sessions,
        store,
        celery,
        settings,
        resolved.inputs,
        subject=sharded.subject_of("analysis", analysis_id),
        owner=principal.id,
        experiment_id=None,
    )
    body = _body(analysis_id, request, resolved)
    location = body.links["self"]
    done = False
    if not await run_in_threadpool(offloaded):  # too large for the API: workers compute it
        future: Future[analyses.Snapshots] = analyzer.snapshots(resolved.inputs)
        finished, _ = await asyncio.wait([asyncio.wrap_future(future)], timeout=WAIT_SECONDS)
        done = bool(finished)
    if not done:
        return JSONResponse(
            body.model_dump(mode="json"),
            status_code=202,
            headers={"Location": location, "Retry-After": "1"},
        )
    try:
        snapshots = future.result()  # raises what the computation raised (damaged snapshot, ...)
        if request.kind == "pca":
            report = await asyncio.wrap_future(
                analyzer.submit(joint.pca, snapshots, resolved, request.components)
            )
            body.pca = JointPCA.of(report.result)
        else:
            matrix = await asyncio.wrap_future(
                analyzer.submit(joint.distances, snapshots, resolved)
            )
            body.distances = JointDistances.of(matrix)
    except analyses.DamagedSnapshot as damage:
        raise resolved.damage(damage) from None
    body.status = "succeeded"
    return JSONResponse(body.model_dump(mode="json"), headers={"Location": location})


def _body(analysis_id: uuid.UUID, request: joint.Request, resolved: joint.Joint) -> AnalysisOut:
    return AnalysisOut(
        id=analysis_id,
        kind=request.kind,
        status="running",
        complete=resolved.inputs.complete,
        snapshots=[JointSnapshot.of(resolved.label(r)) for r in resolved.chosen],
        links={"self": f"/analyses/{analysis_id}"},
    )


def _barriers(
    analysis_id: uuid.UUID,
    request: joint.Request,
    resolved: joint.Joint,
    sessions: sessionmaker[Session],
    store: ObjectStore,
    principal: Principal,
    celery: Celery,
) -> JSONResponse:
    """Barriers: a cached worker job (202 until a worker has computed them)."""
    body = _body(analysis_id, request, resolved)
    location = body.links["self"]
    with sessions() as session:
        queue = joint_barriers.prepare(session, request, resolved)
        document = jobs.cached_or_queued(
            session,
            store,
            celery,
            key=joint_barriers.key(analysis_id),
            owner=principal.id,
            experiment_id=request.parts[0].experiment,
            task=JOINT_BARRIERS_TASK,
            args=[str(analysis_id)],
            queue=queue,
            stored_at=joint_barriers.stored_at(analysis_id, request),
        )
    if document is None:
        return jobs.accepted(body, location)
    body.barriers = JointBarriers.model_validate(document)
    body.status = "succeeded"
    return JSONResponse(body.model_dump(mode="json"), headers={"Location": location})


@router.post(
    "",
    response_model=AnalysisOut,
    responses={**PENDING, **problem_responses(404, 409, 422, 503)},
)
async def create_analysis(
    body: Annotated[AnalysisIn, Body(openapi_examples=ANALYSIS_EXAMPLES)],
    sessions: SessionsDep,
    store: StoreDep,
    principal: PrincipalDep,
    analyzer: AnalyzerDep,
    celery: CeleryDep,
    settings: SettingsDep,
) -> JSONResponse:
    """PCA, distances or barriers of snapshots selected from several experiments of one
    parameter layout.

    PCA and distances are answered at once (200) when the Gram matrix of the selection is cached
    or quick to compute; otherwise 202 with a `Location` to poll (past
    `WEIGHTSPACE_INLINE_ANALYSIS_MAX_BYTES` of snapshots, workers compute it). Exact like the
    per-experiment endpoints (the same Gram machinery); rows follow the selection's order (experiment, then run
    and epoch). Barriers (only for succeeded experiments the service trained, of one model and
    data set) are lines between every two selected runs' last selected snapshots, computed by a
    worker like `GET /experiments/{id}/barriers`: 202 until ready, then 200 from the cache.
    """
    request = body.to_request()
    analysis_id = await run_in_threadpool(joint.save_request, sessions, store, principal, request)
    return await _answer(
        analysis_id, request, sessions, store, principal, analyzer, celery, settings
    )


@router.get(
    "/{analysis_id}",
    response_model=AnalysisOut,
    responses={**PENDING, **problem_responses(404, 409, 422, 503)},
)
async def get_analysis(
    analysis_id: uuid.UUID,
    sessions: SessionsDep,
    store: StoreDep,
    principal: PrincipalDep,
    analyzer: AnalyzerDep,
    celery: CeleryDep,
    settings: SettingsDep,
) -> JSONResponse:
    """The analysis (200), or 202 while it is being computed."""
    request = await run_in_threadpool(joint.load_request, store, principal, analysis_id)
    return await _answer(
        analysis_id, request, sessions, store, principal, analyzer, celery, settings
    )

"""Verification: a worker replays an experiment's training and compares its stored snapshots."""

from __future__ import annotations

import functools
import uuid
from typing import Annotated, Any

from fastapi import Body, Query
from fastapi.responses import JSONResponse
from fastapi.routing import APIRouter
from weightspace_app.infra.queue import VERIFY_TASK
from weightspace_app.usecases import experiments as usecases
from weightspace_app.usecases import jobs as job_rows
from weightspace_app.usecases import verifications

from weightspace_service import jobs
from weightspace_service.deps import (
    AUTHENTICATED,
    CeleryDep,
    PrincipalDep,
    SessionDep,
    SettingsDep,
    StoreDep,
)
from weightspace_service.problems import problem_responses
from weightspace_service.protocol import StrictJSONRoute
from weightspace_service.schemas import (
    VERIFY_EXAMPLES,
    VerificationOut,
    VerificationPending,
    VerifyIn,
)

router = APIRouter(
    prefix="/experiments/{experiment_id}",
    tags=["analysis"],
    route_class=StrictJSONRoute,
    dependencies=AUTHENTICATED,
    responses=problem_responses(401),
)

PENDING = jobs.pending_responses(VerificationPending)
Run = Annotated[int | None, Query(ge=0, le=1023, description="The run asked for (default: all).")]
Epoch = Annotated[
    int | None,
    Query(ge=0, le=2**31 - 1, description="The epoch asked for (default: the final epoch)."),
]


def _pending(experiment_id: uuid.UUID, request: verifications.Request) -> JSONResponse:
    body = VerificationPending(
        experiment_id=experiment_id,
        status="queued",
        detail="the runs are being replayed by a worker",
    )
    query = request.query()
    location = f"/experiments/{experiment_id}/verify" + (f"?{query}" if query else "")
    return jobs.accepted(body, location)


@router.post(
    "/verify",
    status_code=202,
    response_model=VerificationPending,
    responses={**PENDING, **problem_responses(404, 409, 422, 429, 503)},
)
def verify_experiment(
    experiment_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    celery: CeleryDep,
    body: Annotated[VerifyIn | None, Body(openapi_examples=VERIFY_EXAMPLES)] = None,
) -> JSONResponse:
    """Replay the experiment's training on a worker and compare every stored snapshot on the
    way, bit for bit (parameters and metrics), with both environments named.

    Replays start from each run's initial state (derived from the seeds), so verifying to the
    final epoch costs what training cost; `run` and `epoch` bound it. Answers 202 with a
    `Location` (`GET .../verify` with the same `run` and `epoch`) where the verdict appears.
    Only for succeeded experiments the service trained (409 otherwise); a request counts
    against the submission rate.
    """
    given = body or VerifyIn()
    request = verifications.Request(given.run, given.epoch)
    experiment = usecases.get_experiment(session, principal, experiment_id)
    if verifications.request_verification(session, principal, settings, experiment, request):
        undo = functools.partial(job_rows.undo, session, request.key(experiment.id))
        args = [str(experiment.id), *request.to_args()]
        jobs.enqueue(celery, VERIFY_TASK, args, experiment.queue, undo)
    return _pending(experiment.id, request)


@router.get(
    "/verify",
    response_model=VerificationOut,
    responses={**PENDING, **problem_responses(404, 409, 422, 503)},
)
def get_verification(
    experiment_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    store: StoreDep,
    run: Run = None,
    epoch: Epoch = None,
) -> VerificationOut | JSONResponse:
    """The latest verification asked for with this `run` and `epoch`: 202 while a worker
    replays, then the verdict; 409 if none was asked for or the replay failed."""
    experiment = usecases.get_experiment(session, principal, experiment_id)
    request = verifications.Request(run, epoch)
    document: dict[str, Any] | None = verifications.latest(session, store, experiment, request)
    if document is None:
        return _pending(experiment.id, request)
    return VerificationOut(experiment_id=experiment.id, status="ready", **document)

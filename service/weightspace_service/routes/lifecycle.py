"""Cancel, delete and retry experiments and suites."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from weightspace_app.infra.db import Experiment, Suite
from weightspace_app.usecases import lifecycle, limits
from weightspace_app.usecases.suites import suite_status

from weightspace_service.deps import (
    AUTHENTICATED,
    MaintenanceDep,
    PrincipalDep,
    SessionDep,
    SettingsDep,
    StoreDep,
)
from weightspace_service.problems import problem_responses
from weightspace_service.protocol import StrictJSONRoute
from weightspace_service.schemas import ExperimentOut, SuiteOut

router = APIRouter(
    tags=["lifecycle"],
    route_class=StrictJSONRoute,
    dependencies=AUTHENTICATED,
    responses=problem_responses(401),
)


def _location(what: str) -> dict[int | str, dict[str, Any]]:
    return {
        202: {
            "headers": {
                "Location": {"schema": {"type": "string"}, "description": f"URL of the {what}"}
            }
        }
    }


@router.post(
    "/experiments/{experiment_id}/cancel",
    response_model=ExperimentOut,
    responses=problem_responses(404, 409, 422),
)
def cancel_experiment(
    experiment_id: uuid.UUID, session: SessionDep, principal: PrincipalDep
) -> ExperimentOut:
    """Cancel a queued experiment at once, or a running one within seconds (its snapshots so far
    are kept). `finished_at` is set once no worker writes for it any more. 409 if it has ended."""
    return ExperimentOut.of(lifecycle.cancel_experiment(session, principal, experiment_id))


@router.delete(
    "/experiments/{experiment_id}",
    status_code=204,
    response_class=Response,
    responses=problem_responses(404, 409, 422, 503),
)
def delete_experiment(
    experiment_id: uuid.UUID, session: SessionDep, principal: PrincipalDep, store: StoreDep
) -> Response:
    """Delete the experiment, its runs and every stored object (snapshots, resume states, caches).

    409 while it runs (cancel it first) or while a cancelled one's worker is still stopping, and
    for an experiment of a suite (delete the suite)."""
    lifecycle.delete_experiment(session, store, principal, experiment_id)
    return Response(status_code=204)


@router.post(
    "/experiments/{experiment_id}/retry",
    status_code=202,
    response_model=ExperimentOut,
    responses={**_location("experiment"), **problem_responses(404, 409, 422, 429, 503)},
)
def retry_experiment(
    experiment_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    maintenance: MaintenanceDep,
    settings: SettingsDep,
) -> JSONResponse:
    """Queue a failed or cancelled experiment again: finished runs are kept, the others continue
    from their last stored state (bitwise as if never stopped)."""
    lifecycle.retryable(session, principal, Experiment, experiment_id)  # 404 before counting
    limits.admit_retry(session, principal, settings, 1)
    experiment, _ = lifecycle.retry_experiment(session, principal, experiment_id)
    maintenance.wake()  # its task was committed to the outbox with it: publish it now
    body = ExperimentOut.of(experiment)
    return JSONResponse(
        body.model_dump(mode="json"), status_code=202, headers={"Location": body.links.self}
    )


@router.post(
    "/suites/{suite_id}/cancel", response_model=SuiteOut, responses=problem_responses(404, 422)
)
def cancel_suite(suite_id: uuid.UUID, session: SessionDep, principal: PrincipalDep) -> SuiteOut:
    """Cancel every experiment of the suite that has not ended."""
    suite = lifecycle.cancel_suite(session, principal, suite_id)
    return SuiteOut.of(suite, suite_status(suite))


@router.delete(
    "/suites/{suite_id}",
    status_code=204,
    response_class=Response,
    responses=problem_responses(404, 409, 422, 503),
)
def delete_suite(
    suite_id: uuid.UUID, session: SessionDep, principal: PrincipalDep, store: StoreDep
) -> Response:
    """Delete the suite, its experiments with all their objects, and its report (409 while any
    experiment runs)."""
    lifecycle.delete_suite(session, store, principal, suite_id)
    return Response(status_code=204)


@router.post(
    "/suites/{suite_id}/retry",
    status_code=202,
    response_model=SuiteOut,
    responses={**_location("suite"), **problem_responses(404, 409, 422, 429, 503)},
)
def retry_suite(
    suite_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    maintenance: MaintenanceDep,
    store: StoreDep,
    settings: SettingsDep,
) -> JSONResponse:
    """Queue the suite's failed and cancelled experiments again; the report is rebuilt when
    they have all ended."""
    count = lifecycle.retryable(session, principal, Suite, suite_id)
    limits.admit_retry(session, principal, settings, count)
    suite, _ = lifecycle.retry_suite(session, store, principal, suite_id)
    maintenance.wake()  # their tasks were committed to the outbox with them: publish them now
    out = SuiteOut.of(suite, suite_status(suite))
    return JSONResponse(
        out.model_dump(mode="json"), status_code=202, headers={"Location": f"/suites/{suite.id}"}
    )

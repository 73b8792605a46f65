"""Presets and suites: reproduce the paper's experiments with one request, and the report."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Path, Query, Response
from fastapi.responses import JSONResponse, RedirectResponse
from weightspace_app.access import Conflict
from weightspace_app.usecases import suites as usecases
from weightspace_app.usecases.submission import submit_suite

from weightspace.presets import load_preset, preset_names
from weightspace.vocabulary import DatasetName, PresetName
from weightspace_service.cursors import after_created, created_cursor
from weightspace_service.deps import (
    AUTHENTICATED,
    PrincipalDep,
    SessionDep,
    StoreDep,
    SubmitterDep,
)
from weightspace_service.params import Cursor, Limit
from weightspace_service.problems import problem_responses
from weightspace_service.protocol import StrictJSONRoute
from weightspace_service.schemas import (
    SUITE_EXAMPLES,
    ClaimsOut,
    PresetExperimentOut,
    PresetList,
    PresetOut,
    SuiteIn,
    SuiteOut,
    SuitePage,
)

router = APIRouter(
    tags=["suites"],
    route_class=StrictJSONRoute,
    dependencies=AUTHENTICATED,
    responses=problem_responses(401),
)

CONTENT_TYPES = {
    "html": "text/html; charset=utf-8",
    "svg": "image/svg+xml",
    "png": "image/png",
    "json": "application/json",
}
ReportFile = Annotated[str, Path(pattern=r"^[a-z0-9-]+\.(svg|png|html|json)$", max_length=100)]


def _preset_out(name: str, dataset: str | None) -> PresetOut:
    preset = load_preset(name, dataset)
    return PresetOut(
        name=preset.name,
        description=preset.description,
        dataset=preset.dataset,
        experiments=[
            PresetExperimentOut(role=e.role, title=e.title, spec=e.spec) for e in preset.experiments
        ],
    )


@router.get("/presets", response_model=PresetList)
def list_presets() -> PresetList:
    """The presets that reproduce the paper (`quick` for a CPU, `paper` for a GPU)."""
    return PresetList(items=[_preset_out(name, None) for name in preset_names()])


@router.get("/presets/{name}", response_model=PresetOut, responses=problem_responses(422))
def get_preset(
    name: PresetName,
    dataset: Annotated[DatasetName | None, Query()] = None,
) -> PresetOut:
    """One preset's experiment specs, on the data set asked for."""
    return _preset_out(name, dataset)


@router.post(
    "/suites",
    status_code=202,
    response_model=SuiteOut,
    responses={
        202: {
            "headers": {
                "Location": {"schema": {"type": "string"}, "description": "URL of the new suite"}
            }
        },
        **problem_responses(422, 429, 503),
    },
)
def create_suite(
    body: Annotated[SuiteIn, Body(openapi_examples=SUITE_EXAMPLES)],
    session: SessionDep,
    submitter: SubmitterDep,
) -> JSONResponse:
    """Submit the preset's experiments as one suite; the report is built when all have ended.
    The data set is checked as for `POST /experiments` (422 naming `dataset`; `warnings` when no
    live worker consumes the queue)."""
    submitted = submit_suite(session, submitter, body.preset, body.dataset, body.seeds)
    suite = submitted.item
    out = SuiteOut.of(suite, usecases.suite_status(suite))
    out.warnings = submitted.warnings
    return JSONResponse(
        out.model_dump(mode="json"), status_code=202, headers={"Location": f"/suites/{suite.id}"}
    )


@router.get("/suites", response_model=SuitePage, responses=problem_responses(422))
def list_suites(
    session: SessionDep, principal: PrincipalDep, limit: Limit = 50, cursor: Cursor = None
) -> SuitePage:
    """The caller's suites, newest first, each with its experiments and report status."""
    items = usecases.list_suites(session, principal, limit=limit, after=after_created(cursor))
    next_cursor = (
        created_cursor(items[-1].created_at, items[-1].id) if len(items) == limit else None
    )
    return SuitePage(
        items=[SuiteOut.of(s, usecases.suite_status(s)) for s in items], next_cursor=next_cursor
    )


@router.get("/suites/{suite_id}", response_model=SuiteOut, responses=problem_responses(404, 422))
def get_suite(suite_id: uuid.UUID, session: SessionDep, principal: PrincipalDep) -> SuiteOut:
    """The suite's experiments with their progress, and the report's status."""
    suite = usecases.get_suite(session, principal, suite_id)
    return SuiteOut.of(suite, usecases.suite_status(suite))


def _ready(suite_id: uuid.UUID, session: SessionDep, principal: PrincipalDep):  # type: ignore[no-untyped-def]
    suite = usecases.get_suite(session, principal, suite_id)
    if suite.report_status != "ready":
        detail = f"the report is {suite.report_status}"
        raise Conflict(
            detail
            + (
                f": {suite.report_error}"
                if suite.report_error
                else " (it is built when every experiment has ended)"
            )
        )
    return suite


@router.get(
    "/suites/{suite_id}/report",
    status_code=307,
    response_class=RedirectResponse,
    responses={
        307: {
            "description": "The report's HTML page",
            "headers": {"Location": {"schema": {"type": "string"}}},
        },
        **problem_responses(404, 409, 422),
    },
)
def get_report(
    suite_id: uuid.UUID, session: SessionDep, principal: PrincipalDep
) -> RedirectResponse:
    """Redirects to the report's page, whose figures are relative links."""
    _ready(suite_id, session, principal)
    return RedirectResponse(f"/suites/{suite_id}/report/index.html", status_code=307)


@router.get(
    "/suites/{suite_id}/report/{name}",
    response_class=Response,
    responses={
        200: {
            "description": "A file of the report: index.html, claims.json, or a figure (SVG or PNG)",
            "content": {
                t.split(";")[0]: {"schema": {"type": "string"}} for t in CONTENT_TYPES.values()
            },
        },
        **problem_responses(404, 409, 422),
    },
)
def get_report_file(
    suite_id: uuid.UUID,
    name: ReportFile,
    session: SessionDep,
    principal: PrincipalDep,
    store: StoreDep,
) -> Response:
    """One file of the report folder."""
    suite = _ready(suite_id, session, principal)
    data = usecases.report_file(session, store, suite, name)
    return Response(data, media_type=CONTENT_TYPES[name.rsplit(".", 1)[1]])


@router.get(
    "/suites/{suite_id}/claims",
    response_model=ClaimsOut,
    responses=problem_responses(404, 409, 422),
)
def get_claims(suite_id: uuid.UUID, session: SessionDep, principal: PrincipalDep) -> ClaimsOut:
    """The claims table: each claim's measured figures, threshold and verdict."""
    suite = _ready(suite_id, session, principal)
    return ClaimsOut(suite_id=suite.id, claims=suite.claims or [])

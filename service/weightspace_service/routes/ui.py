"""The web pages: experiments, an experiment with its figures, a suite with its report.

HTML for people, not part of the API document. With ``WEIGHTSPACE_AUTH=tokens`` a page without
a token redirects to ``/ui/login``, whose form keeps the token in a cookie (see deps.TOKEN_COOKIE);
the pages are assembled in :mod:`weightspace_service.pages`.
"""

from __future__ import annotations

import uuid
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from weightspace_app.access import Conflict
from weightspace_app.usecases import analyses, joint, suites
from weightspace_app.usecases import experiments as usecases
from weightspace_app.usecases.tokens import authenticate

from weightspace.errors import InvalidField
from weightspace_service import pages
from weightspace_service.deps import (
    TOKEN_COOKIE,
    FigureMakerDep,
    OptionalPrincipalDep,
    SessionDep,
    SessionsDep,
    SettingsDep,
    StoreDep,
)
from weightspace_service.routes import experiments
from weightspace_service.schemas import ExperimentOut, SuiteOut
from weightspace_service.schemas.experiments import TAG_PATTERN

router = APIRouter(prefix="/ui", include_in_schema=False)
LIST_LIMIT = 100
# A token is a short line; a longer form body is not a sign-in.
MAX_LOGIN_BODY = 4096


def _sign_in() -> RedirectResponse:
    return RedirectResponse("/ui/login", status_code=303)


@router.get("", response_class=HTMLResponse)
def experiments_page(
    session: SessionDep,
    principal: OptionalPrincipalDep,
    settings: SettingsDep,
    tag: Annotated[str | None, Query(pattern=TAG_PATTERN)] = None,
) -> Response:
    if principal is None:
        return _sign_in()
    items = usecases.list_experiments(
        session, principal, limit=LIST_LIMIT, after=None, status=None, tag=tag
    )
    return HTMLResponse(
        pages.experiments_page(
            [ExperimentOut.of(e) for e in items],
            limit=LIST_LIMIT,
            tag=tag,
            signed_in=settings.auth == "tokens",
        )
    )


@router.get("/compare", response_class=HTMLResponse)
async def compare_page(
    sessions: SessionsDep,
    store: StoreDep,
    principal: OptionalPrincipalDep,
    settings: SettingsDep,
    experiment: Annotated[list[uuid.UUID], Query(max_length=32)] = [],  # noqa: B006 (FastAPI copies)
) -> Response:
    """The chosen experiments side by side: joint PCA and distances of all their snapshots (as
    ``POST /analyses`` would answer them) and each one's landscape plane."""
    if principal is None:
        return _sign_in()
    who = principal
    ids = list(dict.fromkeys(experiment))

    def prepare() -> tuple[
        list[ExperimentOut], dict[uuid.UUID, str], dict[str, uuid.UUID], str | None
    ]:
        with sessions() as session:
            chosen = [ExperimentOut.of(usecases.get_experiment(session, who, i)) for i in ids]
            names = usecases.display_names(session, who, ids)
        if not ids:
            return chosen, names, {}, None
        parts = tuple(joint.Part(i) for i in ids)
        try:
            joint.resolve(sessions, store, who, joint.Request("pca", parts))
        except (InvalidField, Conflict) as error:
            return chosen, names, {}, str(error)
        saved = {
            "pca": joint.save_request(sessions, store, who, joint.Request("pca", parts)),
            "distances": joint.save_request(
                sessions, store, who, joint.Request("distances", parts)
            ),
        }
        return chosen, names, saved, None

    chosen, names, saved, problem = await run_in_threadpool(prepare)
    return HTMLResponse(
        pages.compare_page(
            chosen, names, saved, problem=problem, signed_in=settings.auth == "tokens"
        )
    )


@router.get("/experiments/{experiment_id}", response_class=HTMLResponse)
async def experiment_page(
    experiment_id: uuid.UUID,
    sessions: SessionsDep,
    principal: OptionalPrincipalDep,
    settings: SettingsDep,
    maker: FigureMakerDep,
) -> Response:
    if principal is None:
        return _sign_in()
    who = principal

    def read() -> ExperimentOut:  # what GET /experiments/{id} answers
        with sessions() as session:
            return experiments.get_experiment(experiment_id, session, who)

    experiment = await run_in_threadpool(read)
    inputs = await run_in_threadpool(analyses.load_inputs, sessions, principal, experiment_id)
    figures = await run_in_threadpool(maker.availability, inputs)
    return HTMLResponse(
        pages.experiment_page(experiment, figures, signed_in=settings.auth == "tokens")
    )


@router.get("/suites/{suite_id}", response_class=HTMLResponse)
def suite_page(
    suite_id: uuid.UUID, session: SessionDep, principal: OptionalPrincipalDep, settings: SettingsDep
) -> Response:
    if principal is None:
        return _sign_in()
    suite = suites.get_suite(session, principal, suite_id)
    out = SuiteOut.of(suite, suites.suite_status(suite))
    return HTMLResponse(
        pages.suite_page(out, suite.claims or [], signed_in=settings.auth == "tokens")
    )


@router.get("/login", response_class=HTMLResponse)
def login_form(settings: SettingsDep) -> Response:
    if settings.auth == "none":
        return RedirectResponse("/ui", status_code=303)
    return HTMLResponse(pages.login_page())


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, sessions: SessionsDep, settings: SettingsDep) -> Response:
    if settings.auth == "none":
        return RedirectResponse("/ui", status_code=303)
    body = await request.body()
    token = parse_qs(body[:MAX_LOGIN_BODY].decode("utf-8", "replace")).get("token", [""])[0]

    def check() -> bool:
        with sessions() as session:
            return token != "" and authenticate(session, token.strip()) is not None

    if not await run_in_threadpool(check):
        return HTMLResponse(pages.login_page("That token is unknown or revoked."), status_code=401)
    response = RedirectResponse("/ui", status_code=303)
    response.set_cookie(
        TOKEN_COOKIE,
        token.strip(),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.post("/logout")
def logout() -> Response:
    response = _sign_in()
    response.delete_cookie(TOKEN_COOKIE, path="/")
    return response

"""Dependency providers: settings, database session, snapshot store, queue and the principal."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from celery import Celery
from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker
from weightspace_app.access import ANONYMOUS, Principal
from weightspace_app.infra.maintenance import Maintenance
from weightspace_app.infra.settings import Settings
from weightspace_app.usecases.analyses import Analyzer
from weightspace_app.usecases.figures import FigureMaker
from weightspace_app.usecases.submission import Submitter
from weightspace_app.usecases.tokens import authenticate

from weightspace.snapshots import ObjectStore
from weightspace.vocabulary import Queue
from weightspace_service.params import IdempotencyKeyHeader
from weightspace_service.problems import Unauthorized


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_session(request: Request) -> Iterator[Session]:
    with request.app.state.sessions() as session:
        yield session


def get_store(request: Request) -> ObjectStore:
    store: ObjectStore = request.app.state.store
    return store


def get_sessions(request: Request) -> sessionmaker[Session]:
    """The session factory, for handlers that must not hold a connection while they compute."""
    return request.app.state.sessions  # type: ignore[no-any-return]


def get_analyzer(request: Request) -> Analyzer:
    return request.app.state.analyzer  # type: ignore[no-any-return]


def get_figure_maker(request: Request) -> FigureMaker:
    return request.app.state.figures  # type: ignore[no-any-return]


def get_maintenance(request: Request) -> Maintenance:
    return request.app.state.maintenance  # type: ignore[no-any-return]


def get_celery(request: Request) -> Celery:
    return request.app.state.celery


#: The cookie /ui/login sets from a token, so that a browser can read pages, figures and files.
TOKEN_COOKIE = "weightspace_token"
READ_METHODS = frozenset({"GET", "HEAD"})
_bearer = HTTPBearer(
    auto_error=False,
    description="A token from `weightspace token create --owner NAME` (when WEIGHTSPACE_AUTH=tokens).",
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def get_principal(
    request: Request, settings: Annotated[Settings, Depends(get_settings)], credentials: Credentials
) -> Principal:
    """Who is calling: every handler but /health goes through this one dependency. With
    ``auth='none'`` everyone is the anonymous principal; with ``auth='tokens'`` the bearer
    token's owner (for GET, also the token in the web pages' cookie), or 401."""
    if settings.auth == "none":
        return ANONYMOUS
    secret = credentials.credentials if credentials is not None else None
    if secret is None and request.method in READ_METHODS:
        # The web pages' cookie (set by /ui/login), for reads only: a page elsewhere cannot
        # make a browser change anything with it (and SameSite=Strict keeps it from sending it).
        secret = request.cookies.get(TOKEN_COOKIE)
    if secret is None:
        raise Unauthorized("this API needs `Authorization: Bearer <token>`", presented=False)
    with request.app.state.sessions() as session:
        principal = authenticate(session, secret)
    if principal is None:
        raise Unauthorized("the bearer token is unknown or revoked", presented=True)
    return principal


def get_optional_principal(
    request: Request, settings: Annotated[Settings, Depends(get_settings)], credentials: Credentials
) -> Principal | None:
    """The caller if authenticated, else None (for routes that answer anyone, with less)."""
    try:
        return get_principal(request, settings, credentials)
    except Unauthorized:
        return None


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session)]
SessionsDep = Annotated[sessionmaker[Session], Depends(get_sessions)]
AnalyzerDep = Annotated[Analyzer, Depends(get_analyzer)]
FigureMakerDep = Annotated[FigureMaker, Depends(get_figure_maker)]
StoreDep = Annotated[ObjectStore, Depends(get_store)]
CeleryDep = Annotated[Celery, Depends(get_celery)]
MaintenanceDep = Annotated[Maintenance, Depends(get_maintenance)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
OptionalPrincipalDep = Annotated[Principal | None, Depends(get_optional_principal)]
#: For routers: every route needs a principal (FastAPI resolves it once per request).
AUTHENTICATED = [Depends(get_principal)]
QueueParam = Annotated[
    Queue | None,
    Query(description="Worker queue; default from the server's settings."),
]


def get_submitter(
    request: Request,
    principal: PrincipalDep,
    settings: SettingsDep,
    queue: QueueParam = None,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Submitter:
    """Who submits, to which queue; a new submission wakes this process's outbox relay."""
    return Submitter(
        principal,
        queue or settings.default_queue,
        settings,
        idempotency_key,
        wake=get_maintenance(request).wake,
    )


SubmitterDep = Annotated[Submitter, Depends(get_submitter)]

"""Dependency providers: settings, database session, snapshot store, queue and the principal."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Literal

from celery import Celery
from fastapi import Depends, Query, Request
from sqlalchemy.orm import Session

from weightspace.adapters.experiments import ANONYMOUS, Principal
from weightspace.adapters.settings import Settings
from weightspace.snapshots import ObjectStore


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_session(request: Request) -> Iterator[Session]:
    with request.app.state.sessions() as session:
        yield session


def get_store(request: Request) -> ObjectStore:
    return request.app.state.store


def get_celery(request: Request) -> Celery:
    return request.app.state.celery


def get_principal(settings: Annotated[Settings, Depends(get_settings)]) -> Principal:
    """Who is calling. Every handler goes through this one dependency; with ``auth='none'``
    (the only mode so far) everyone is the anonymous principal."""
    return ANONYMOUS


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session)]
StoreDep = Annotated[ObjectStore, Depends(get_store)]
CeleryDep = Annotated[Celery, Depends(get_celery)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
QueueParam = Annotated[
    Literal["gpu", "cpu"] | None,
    Query(description="Worker queue; default from the server's settings."),
]

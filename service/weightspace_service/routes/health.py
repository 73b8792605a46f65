"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool
from weightspace_app.infra import readiness
from weightspace_app.infra.migrate import check as check_migrated

from weightspace_service.deps import OptionalPrincipalDep
from weightspace_service.protocol import StrictJSONRoute
from weightspace_service.schemas import Health, Readiness

router = APIRouter(tags=["health"], route_class=StrictJSONRoute)


@router.get("/health", response_model=Health)
async def health() -> Health:
    """The process is up (answered on the event loop: no worker thread needed)."""
    return Health(status="ok")


def probe_for(state: object) -> readiness.Probe:
    """The app's readiness checks: database (migrated), broker, store (and its free space)."""
    settings = state.settings  # type: ignore[attr-defined]

    def database() -> None:
        with state.engine.connect() as connection:  # type: ignore[attr-defined]
            connection.execute(text("SELECT 1"))
        check_migrated(settings.database_url)

    def broker() -> None:
        with state.celery.connection_for_write() as connection:  # type: ignore[attr-defined]
            connection.ensure_connection(max_retries=1, timeout=settings.ready_deadline)

    store = state.store  # type: ignore[attr-defined]
    return readiness.Probe(
        {
            "database": database,
            "broker": broker,
            "store": store.ping,
            "store_space": readiness.space_check(store, settings.store_min_free_bytes),
        },
        deadline=settings.ready_deadline,
        ttl=settings.ready_cache_seconds,
    )


@router.get(
    "/ready",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "A dependency is unreachable"}},
    # A token is optional here: it only adds each check's error to the answer.
    openapi_extra={"security": [{}]},
)
async def ready(request: Request, principal: OptionalPrincipalDep) -> JSONResponse:
    """Database (migrated), broker and snapshot store are reachable, and the store has room.

    The checks run concurrently under one deadline and are cached for a second or two. Each
    check's error (which may name hosts and ports) is shown to authenticated callers only;
    others see `ok` or `unavailable`.
    """
    checks = await run_in_threadpool(request.app.state.readiness.results)
    ok = all(readiness.is_ok(v) for v in checks.values())
    if principal is None:
        checks = {name: "ok" if readiness.is_ok(v) else "unavailable" for name, v in checks.items()}
    body = Readiness(status="ready" if ok else "unavailable", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)

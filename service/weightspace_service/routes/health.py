"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from weightspace.adapters.migrate import check as check_migrated
from weightspace_service.deps import OptionalPrincipalDep
from weightspace_service.protocol import StrictJSONRoute
from weightspace_service.schemas import Health, Readiness

router = APIRouter(tags=["health"], route_class=StrictJSONRoute)


@router.get("/health", response_model=Health)
async def health() -> Health:
    """The process is up (answered on the event loop: no worker thread needed)."""
    return Health(status="ok")


def _check(name: str, probe) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    try:
        probe()
    except Exception as error:  # every failure is reported, none is raised
        return name, f"{type(error).__name__}: {error}"[:500]
    return name, "ok"


@router.get(
    "/ready",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "A dependency is unreachable"}},
)
def ready(request: Request, principal: OptionalPrincipalDep) -> JSONResponse:
    """Database (migrated), broker and snapshot store are reachable.

    Each check's error (which may name hosts and ports) is shown to authenticated callers only;
    others see `ok` or `unavailable`.
    """
    state = request.app.state

    def database() -> None:
        with state.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        check_migrated(state.settings.database_url)

    def broker() -> None:
        with state.celery.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=3)

    checks = dict(
        _check(*c)
        for c in (("database", database), ("broker", broker), ("store", state.store.ping))
    )
    ok = all(v == "ok" for v in checks.values())
    if principal is None:
        checks = {name: "ok" if v == "ok" else "unavailable" for name, v in checks.items()}
    body = Readiness(status="ready" if ok else "unavailable", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)

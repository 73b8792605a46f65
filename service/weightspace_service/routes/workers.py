"""The live workers: what each consumes and can load (the registry of weightspace_app.infra.workers)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.exceptions import HTTPException
from weightspace_app.infra import workers

from weightspace_service.deps import PrincipalDep, SessionDep, SettingsDep
from weightspace_service.problems import problem_responses
from weightspace_service.protocol import StrictJSONRoute
from weightspace_service.schemas import WorkerList, WorkerOut

router = APIRouter(
    prefix="/workers",
    tags=["workers"],
    route_class=StrictJSONRoute,
    responses=problem_responses(401, 403),
)


@router.get("", response_model=WorkerList)
def list_workers(session: SessionDep, principal: PrincipalDep, settings: SettingsDep) -> WorkerList:
    """Workers whose last heartbeat is within `WEIGHTSPACE_WORKER_TTL`: their queues, device,
    torch version and data sets. Admins only when `WEIGHTSPACE_AUTH=tokens` (others 403)."""
    if settings.auth == "tokens" and not principal.admin:
        raise HTTPException(403, "only an admin token may list the workers")
    live = workers.live_workers(session, settings.worker_ttl)
    return WorkerList(
        items=[
            WorkerOut(
                id=w.id,
                queues=list(w.queues),
                device=w.device,  # type: ignore[arg-type]
                device_name=w.device_name,
                torch_version=w.torch_version,
                datasets={k: list(v) for k, v in w.datasets.items()},
                started_at=w.started_at,
                seen_at=w.seen_at or w.started_at,
            )
            for w in live
        ],
        ttl_seconds=settings.worker_ttl,
    )

"""The HTTP side of cached worker jobs: enqueue once, answer 202 with where to poll, then 200.

Shared by the barriers of an experiment, its landscape planes and the barriers analyses across
experiments, so that all answer alike: ``202`` with ``Location`` and ``Retry-After`` while a
worker computes, ``200`` from the cache afterwards, ``409`` if the computation failed, ``503``
(and nothing queued) if the job queue is unreachable.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from celery import Celery
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.orm import Session, sessionmaker
from weightspace_app.infra.queue import GRAM_TASK
from weightspace_app.infra.settings import Settings
from weightspace_app.usecases import jobs, sharded
from weightspace_app.usecases.analyses import Inputs

from weightspace.snapshots import ObjectStore
from weightspace_service.problems import Unavailable

RETRY_AFTER_S = 5


def enqueue(
    celery: Celery, task: str, args: Sequence[Any], queue: str, undo: Callable[[], None]
) -> None:
    """Send the task; if the queue is unreachable, undo the request and answer 503."""
    try:
        celery.send_task(task, args=list(args), queue=queue)
    except Exception as error:
        undo()
        raise Unavailable(f"the job queue is unreachable ({type(error).__name__})") from error


def accepted(body: BaseModel, location: str) -> JSONResponse:
    """202: being computed by a worker; poll ``location`` after ``Retry-After`` seconds."""
    return JSONResponse(
        body.model_dump(mode="json"),
        status_code=202,
        headers={"Retry-After": str(RETRY_AFTER_S), "Location": location},
    )


def cached_or_queued(
    session: Session,
    store: ObjectStore,
    celery: Celery,
    *,
    key: str,
    owner: str,
    experiment_id: uuid.UUID | None,
    task: str,
    args: Sequence[Any],
    queue: str,
    stored_at: str | None = None,
) -> dict[str, Any] | None:
    """The job's cached result (at ``stored_at``, default :func:`.jobs.result_key`), or None
    after making sure it is queued (once)."""
    if (document := jobs.cached(session, store, key, stored_at)) is not None:
        return document
    if jobs.request(session, key, owner, experiment_id):
        enqueue(celery, task, args, queue, lambda: jobs.undo(session, key))
    return None


def on_workers(
    sessions: sessionmaker[Session],
    store: ObjectStore,
    celery: Celery,
    settings: Settings,
    inputs: Inputs,
    *,
    subject: str,
    owner: str,
    experiment_id: uuid.UUID | None,
) -> bool:
    """Whether workers compute the Gram of ``inputs`` (too large to read here, not cached): its
    job is queued (once; again if it stalled) and the caller answers 202."""
    with sessions() as session:
        key = sharded.offload(session, store, inputs, settings.inline_analysis_max_bytes)
        if key is None:
            return False
        if sharded.request(session, key, owner, experiment_id, settings.requeue_after):
            undo = functools.partial(sharded.undo, session, key)
            enqueue(celery, GRAM_TASK, [subject, key], settings.default_queue, undo)
        return True


def pending_responses(model: type[BaseModel]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entry of the 202 answer."""
    return {
        202: {
            "model": model,
            "description": "Being computed by a worker: poll `Location` after `Retry-After` "
            "seconds",
            "headers": {
                "Retry-After": {"schema": {"type": "integer"}, "description": "Seconds"},
                "Location": {"schema": {"type": "string"}, "description": "Where to poll"},
            },
        }
    }

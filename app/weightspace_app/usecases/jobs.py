"""Cached worker jobs: computed once per distinct request by a worker, answered from the store.

The pattern of ``GET /experiments/{id}/barriers``, for any request identified by a key (a
landscape plane with its options, a barriers analysis across experiments): the first request
inserts the job's row as ``queued`` (the primary key makes that atomic: of two concurrent
requests one inserts, the other sees the row) and the caller enqueues the task; the worker
computes the result (:func:`run`), stores its JSON under :func:`result_key` (or a key of the
caller's, e.g. under the experiment's prefix, so that deleting the experiment deletes it) and
marks the row ``ready`` (or ``failed``, with why); later requests read the stored JSON.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from weightspace.snapshots import ObjectStore
from weightspace.vocabulary import JobStatus
from weightspace_app.access import Conflict
from weightspace_app.infra.db import CachedJob
from weightspace_app.usecases.analyses import all_exist

log = logging.getLogger(__name__)


def result_key(key: str) -> str:
    return f"jobs/{key}.json"


def cached(
    session: Session, store: ObjectStore, key: str, stored_at: str | None = None
) -> dict[str, Any] | None:
    """The job's stored result (at ``stored_at``, default :func:`result_key`) once it is ready;
    Conflict if it failed; None otherwise."""
    job = session.get(CachedJob, key)
    if job is None or job.status == "queued":
        return None
    if job.status == "failed":
        raise Conflict(f"the computation failed: {job.error}")
    document: dict[str, Any] = json.loads(store.get(stored_at or result_key(key)))
    return document


def request(session: Session, key: str, owner: str, experiment_id: uuid.UUID | None = None) -> bool:
    """Whether this request queued the job (the caller enqueues it, or calls :func:`undo`)."""
    if session.get(CachedJob, key) is not None:
        return False
    session.add(CachedJob(key=key, owner=owner, experiment_id=experiment_id, status="queued"))
    try:
        session.commit()
    except IntegrityError:  # a concurrent request queued it first
        session.rollback()
        return False
    return True


def undo(session: Session, key: str) -> None:
    """The job could not be enqueued: forget the request, so the next one tries again."""
    session.execute(delete(CachedJob).where(CachedJob.key == key))
    session.commit()


def run(
    sessions: sessionmaker[Session],
    store: ObjectStore,
    key: str,
    compute: Callable[[Session], dict[str, Any]],
    *,
    owner: str,
    experiment_id: uuid.UUID | None = None,
    stored_at: str | None = None,
    members: Sequence[uuid.UUID] | None = None,
) -> dict[str, Any]:
    """The worker's side: compute (unless already ready), store the JSON, mark the job ready; on
    an error mark it failed with why and re-raise. Also for a caller that computes without a
    request (the report job): the row is created if missing.

    ``members`` (default: ``experiment_id``) are the experiments the result mentions: asked after
    the write, if one was deleted meanwhile the stored JSON is deleted again, so that it does not
    outlive them (deleting sweeps the experiment's objects once more after its commit, so one of
    the two sees the other; see :func:`.gram_store.gram_of`)."""
    where = stored_at or result_key(key)
    if members is None:
        members = [] if experiment_id is None else [experiment_id]
    with sessions() as session:
        job = session.get(CachedJob, key)
        if job is not None and job.status == "ready":
            ready: dict[str, Any] = json.loads(store.get(where))
            return ready
        if job is None:
            request(session, key, owner, experiment_id)
        # End the read's transaction: its connection goes back to the pool while the job
        # computes (minutes, for a replay), unless ``compute`` reads the database itself.
        session.commit()
        try:
            document = compute(session)
            store.put(where, json.dumps(document).encode())
        except Exception as error:
            session.rollback()
            _mark(session, key, "failed", f"{type(error).__name__}: {error}")
            raise
        _mark(session, key, "ready", None)
        if members and not all_exist(session, members):
            log.info("an experiment of cached job %s was deleted while it was computed", key)
            store.delete_prefix(where)
        else:
            log.info("cached job %s stored", key)
        return document


def _mark(session: Session, key: str, status: JobStatus, error: str | None) -> None:
    session.execute(
        update(CachedJob).where(CachedJob.key == key).values(status=status, error=error)
    )
    session.commit()

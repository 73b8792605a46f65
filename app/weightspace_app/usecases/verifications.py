"""Use cases of verification (``POST /experiments/{id}/verify``): replaying stored results.

A verification of one scope (a run or all, up to an epoch or the final one) is a worker job
(:mod:`.jobs`) whose row is keyed by the experiment and the scope. Unlike a cached analysis it
is computed again on every request, since the store may have changed since the last one: a
request queues the job unless it is already queued (then it waits for that one). The worker
replays through the core (:func:`weightspace.verification.verify`) and stores the answer under
the experiment's prefix, deleted with it; ``GET`` answers the latest.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from weightspace import verification
from weightspace.data import load_dataset
from weightspace.snapshots import ObjectNotFound, ObjectStore, Snapshot, experiment_prefix
from weightspace.snapshots import get_snapshot as read_snapshot
from weightspace.spec import ExperimentSpec
from weightspace_app.access import Conflict, Principal, Unsupported
from weightspace_app.infra.db import CachedJob, Experiment, SnapshotRecord, utcnow
from weightspace_app.infra.settings import Settings
from weightspace_app.usecases import jobs, limits


@dataclass(frozen=True)
class Request:
    """What a caller asks to verify: one run or all (None), up to one epoch or the final."""

    run: int | None = None
    epoch: int | None = None

    def name(self) -> str:
        runs = "all" if self.run is None else str(self.run)
        until = "final" if self.epoch is None else str(self.epoch)
        return f"run-{runs}-epoch-{until}"

    def key(self, experiment_id: uuid.UUID) -> str:
        """The job's row among the cached jobs."""
        return f"verify/{experiment_id.hex}/{self.name()}"

    def stored_at(self, experiment_id: uuid.UUID) -> str:
        """Where the latest answer is kept: under the experiment's prefix, deleted with it."""
        return f"{experiment_prefix(experiment_id)}verifications/{self.name()}.json"

    def query(self) -> str:
        """The request as the query of ``GET /experiments/{id}/verify``."""
        given = {"run": self.run, "epoch": self.epoch}
        return "&".join(f"{name}={value}" for name, value in given.items() if value is not None)

    def to_args(self) -> list[int | None]:
        return [self.run, self.epoch]


def check(experiment: Experiment, request: Request) -> verification.Scope:
    """The scope to replay; Conflict (409) if the experiment cannot be verified, InvalidField
    (422 naming ``run`` or ``epoch``) if the request is out of its range."""
    if experiment.source != "train":
        raise Unsupported(
            "this experiment's snapshots were uploaded: the service did not train them, so it "
            "has nothing to replay"
        )
    if experiment.status != "succeeded":
        raise Conflict(
            f"an experiment is verified once it has succeeded; it is {experiment.status}"
        )
    spec = ExperimentSpec.model_validate(experiment.spec)
    return verification.Scope.of(spec, request.run, request.epoch)


def request_verification(
    session: Session,
    principal: Principal,
    settings: Settings,
    experiment: Experiment,
    request: Request,
) -> bool:
    """Whether this request queued the job (the caller enqueues it, or calls :func:`.jobs.undo`);
    False while the same verification is already queued. A replay costs what training cost, so
    with ``auth='tokens'`` each request counts against the submission rate."""
    check(experiment, request)
    if settings.auth == "tokens":
        limits.check_rate(session, principal, settings)
    key = request.key(experiment.id)
    # Atomic: of two concurrent requests after a finished job, one requeues it.
    requeued = session.execute(
        update(CachedJob)
        .where(CachedJob.key == key, CachedJob.status != "queued")
        .values(status="queued", error=None, updated_at=utcnow())
    )
    session.commit()
    if requeued.rowcount:  # type: ignore[attr-defined]
        return True
    return jobs.request(session, key, experiment.owner, experiment.id)


def latest(
    session: Session, store: ObjectStore, experiment: Experiment, request: Request
) -> dict[str, Any] | None:
    """The latest answer, None while it is being computed; Conflict if none was asked for or
    the replay failed."""
    if session.get(CachedJob, request.key(experiment.id)) is None:
        raise Conflict(
            f"no verification of {request.name()} has been asked for; "
            "POST /experiments/{id}/verify asks for one"
        )
    return jobs.cached(session, store, request.key(experiment.id), request.stored_at(experiment.id))


def compute_job(
    sessions: sessionmaker[Session],
    store: ObjectStore,
    experiment_id: uuid.UUID,
    request: Request,
    *,
    device: str = "cpu",
    data_dir: Path | None = None,
    allow_download: bool = False,
) -> dict[str, Any]:
    """The worker's use case: replay, compare, store the answer (see :func:`.jobs.run`)."""
    with sessions() as session:
        experiment = session.get_one(Experiment, experiment_id)
        owner, scope = experiment.owner, check(experiment, request)
        spec = ExperimentSpec.model_validate(experiment.spec)
        records = session.scalars(
            select(SnapshotRecord).where(SnapshotRecord.experiment_id == experiment_id)
        )
        files = {(r.run, r.epoch): (r.key, r.sha256) for r in records}

    def stored(run: int, epoch: int) -> Snapshot:
        if (run, epoch) not in files:
            raise ObjectNotFound(f"no snapshot of run {run} at epoch {epoch} was recorded")
        return read_snapshot(store, *files[run, epoch])

    def replay(_session: Session) -> dict[str, Any]:
        data = load_dataset(spec.dataset, data_dir, allow_download=allow_download)
        result = verification.verify(spec, data, stored, scope, device=device)
        return {"run": request.run, "epoch": request.epoch, "verified_at": utcnow().isoformat()} | (
            result.to_dict()
        )

    return jobs.run(
        sessions,
        store,
        request.key(experiment_id),
        replay,
        owner=owner,
        experiment_id=experiment_id,
        stored_at=request.stored_at(experiment_id),
    )

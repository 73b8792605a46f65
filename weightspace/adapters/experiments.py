"""Use cases shared by the API and the worker: submit, read and execute experiments.

Analyses are in :mod:`weightspace.adapters.analyses`.

The API and the Celery task are thin adapters over these functions; these in turn hold no
training or analysis math, which lives in the core (``weightspace.training``,
``weightspace.analysis``).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from weightspace.adapters import logs
from weightspace.adapters.db import (
    Experiment,
    Run,
    SnapshotRecord,
    Suite,
    utcnow,
)
from weightspace.data import load_dataset
from weightspace.snapshots import (
    ObjectStore,
    Snapshot,
    TrainState,
    decode_state,
    encode_state,
    put_snapshot,
    state_key,
)
from weightspace.spec import ExperimentSpec, plan_runs
from weightspace.training import Cancelled, EpochProgress, Trainer
from weightspace.vocabulary import TERMINAL

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Principal:
    """Who is asking. Every query is scoped to the principal's own experiments (all, for an
    admin); ``token`` is the id of the token presented, if any (what rate limits count)."""

    id: str
    admin: bool = False
    token: str | None = None

    def owns(self, owner: str) -> bool:
        return self.admin or owner == self.id


ANONYMOUS = Principal("anonymous")


class NotFound(LookupError):
    pass


class Conflict(RuntimeError):
    """The request is valid but the experiment's current state cannot answer it (HTTP 409)."""


class InvalidQuery(ValueError):
    """A query parameter is out of range for this experiment (HTTP 422, naming ``field``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


# --------------------------------------------------------------------------- submit & read


def new_experiment(
    principal: Principal, spec: ExperimentSpec, queue: str, **fields: object
) -> Experiment:
    """An experiment row with its runs (seeds recorded), not yet added to a session."""
    experiment = Experiment(
        id=uuid.uuid4(),
        owner=principal.id,
        name=spec.name,
        spec=spec.model_dump(mode="json"),
        queue=queue,
        status="queued",
        created_at=utcnow(),
        **fields,
    )
    experiment.runs = [
        Run(
            run=plan.run,
            init_seed=plan.init_seed,
            data_seed=plan.data_seed,
            pretrain_seed=plan.pretrain_seed,
            dropout_seed=plan.dropout_seed,
            pretrain_dropout_seed=plan.pretrain_dropout_seed,
            final_epoch=spec.final_epoch,
            status="queued",
        )
        for plan in plan_runs(spec)
    ]
    return experiment


def submit(session: Session, principal: Principal, spec: ExperimentSpec, queue: str) -> Experiment:
    """Insert the experiment and its runs and commit; the caller enqueues."""
    experiment = new_experiment(principal, spec, queue)
    session.add(experiment)
    session.commit()
    return experiment


Owned = TypeVar("Owned", Experiment, Suite)


def get_owned(
    session: Session, principal: Principal, kind: type[Owned], item_id: uuid.UUID
) -> Owned:
    """The row, if it exists and belongs to the principal; someone else's is "not found" too."""
    item = session.get(kind, item_id)
    if item is None or not principal.owns(item.owner):
        raise NotFound(f"{kind.__name__.lower()} {item_id} not found")
    return item


def get_experiment(session: Session, principal: Principal, experiment_id: uuid.UUID) -> Experiment:
    return get_owned(session, principal, Experiment, experiment_id)


def list_experiments(
    session: Session,
    principal: Principal,
    *,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
    status: str | None,
) -> list[Experiment]:
    """Newest first; ``after`` is the (created_at, id) of the last item of the previous page."""
    # Runs in one more statement for the whole page (not one per experiment).
    query = select(Experiment).options(selectinload(Experiment.runs))
    if not principal.admin:
        query = query.where(Experiment.owner == principal.id)
    if status is not None:
        query = query.where(Experiment.status == status)
    if after is not None:
        created, last_id = after
        query = query.where(
            (Experiment.created_at < created)
            | ((Experiment.created_at == created) & (Experiment.id < last_id))
        )
    query = query.order_by(Experiment.created_at.desc(), Experiment.id.desc()).limit(limit)
    return list(session.scalars(query))


def get_run(session: Session, experiment: Experiment, run: int) -> Run:
    found = session.get(Run, (experiment.id, run))
    if found is None:
        raise NotFound(f"run {run} of experiment {experiment.id} not found")
    return found


def list_snapshots(
    session: Session, experiment: Experiment, run: int, *, limit: int, after_epoch: int | None
) -> list[SnapshotRecord]:
    get_run(session, experiment, run)
    query = select(SnapshotRecord).where(
        SnapshotRecord.experiment_id == experiment.id, SnapshotRecord.run == run
    )
    if after_epoch is not None:
        query = query.where(SnapshotRecord.epoch > after_epoch)
    return list(session.scalars(query.order_by(SnapshotRecord.epoch).limit(limit)))


def get_snapshot_record(
    session: Session, experiment: Experiment, run: int, epoch: int
) -> SnapshotRecord:
    record = session.get(SnapshotRecord, (experiment.id, run, epoch))
    if record is None:
        raise NotFound(f"no snapshot of run {run} at epoch {epoch}")
    return record


# --------------------------------------------------------------------------- execute


class _Recorder:
    """The trainer's callbacks: snapshots and states to the store, metadata and progress to the DB."""

    CANCEL_POLL_SECONDS = 2.0

    def __init__(
        self, sessions: sessionmaker[Session], store: ObjectStore, experiment_id: uuid.UUID
    ) -> None:
        self.sessions = sessions
        self.store = store
        self.experiment_id = experiment_id
        self._checked = 0.0
        self._lock = threading.Lock()

    def snapshot(self, snapshot: Snapshot, state: TrainState) -> None:
        stored = put_snapshot(self.store, self.experiment_id, snapshot)
        key = state_key(self.experiment_id, state.run, state.epoch)
        self.store.put(key, encode_state(state, self.experiment_id))
        with self.sessions() as session:
            session.merge(
                SnapshotRecord(
                    experiment_id=self.experiment_id,
                    run=snapshot.run,
                    epoch=snapshot.epoch,
                    key=stored.key,
                    size=stored.size,
                    sha256=stored.sha256,
                    parameters=int(snapshot.params.size),
                    metrics=dict(snapshot.metrics),
                    created_at=utcnow(),
                )
            )
            run = session.get_one(Run, (self.experiment_id, snapshot.run))
            run.epoch = snapshot.epoch
            run.metrics = dict(snapshot.metrics)
            run.environment = dict(snapshot.environment)
            previous, run.state_key, run.state_epoch = run.state_key, key, state.epoch
            if snapshot.epoch == run.final_epoch:
                run.status, run.finished_at = "succeeded", utcnow()
            session.commit()
        if previous is not None and previous != key:
            self.store.delete_prefix(previous)  # superseded, now that the database points past it

    def progress(self, progress: EpochProgress) -> None:
        with logs.context(run=progress.run, epoch=progress.epoch):
            log.info(
                "epoch %d/%d: train loss %.4f (%.1f s)",
                progress.epoch,
                progress.final_epoch,
                progress.train_loss,
                progress.seconds,
            )
        with self.sessions() as session:
            run = session.get_one(Run, (self.experiment_id, progress.run))
            run.epoch, run.train_loss = progress.epoch, progress.train_loss
            session.commit()

    def cancelled(self) -> bool:
        now = time.monotonic()
        if now - self._checked < self.CANCEL_POLL_SECONDS:
            return False
        self._checked = now
        with self.sessions() as session:
            status = session.scalar(
                select(Experiment.status).where(Experiment.id == self.experiment_id)
            )
            return status == "cancelled"


def _finish(
    sessions: sessionmaker[Session], experiment_id: uuid.UUID, status: str, error: str | None = None
) -> None:
    with sessions() as session:
        experiment = session.get_one(Experiment, experiment_id)
        experiment.status, experiment.error, experiment.finished_at = status, error, utcnow()
        for run in experiment.runs:
            if run.status not in TERMINAL:
                run.status = status
                run.finished_at = utcnow()
        session.commit()


def execute(
    sessions: sessionmaker[Session],
    store: ObjectStore,
    experiment_id: uuid.UUID,
    *,
    device: str,
    data_dir: Path | None = None,
    allow_download: bool = False,
) -> str:
    """Train a queued (or interrupted) experiment to the end; return its final status.

    Safe to call again for the same experiment (a redelivered task): finished runs are skipped
    and the others continue from their last stored resume state, bitwise as if never stopped.
    """
    with sessions() as session:
        # Locked, as a cancel or delete locks it: neither can slip between this read and commit.
        experiment = session.get(Experiment, experiment_id, with_for_update=True)
        if experiment is None:  # deleted, or never committed: nothing to do
            return "missing"
        if experiment.status in TERMINAL:
            if experiment.finished_at is None:  # cancelled while its worker was lost
                experiment.finished_at = utcnow()
                session.commit()
            return str(experiment.status)
        spec = ExperimentSpec.model_validate(experiment.spec)
        experiment.status = "running"
        experiment.started_at = experiment.started_at or utcnow()
        todo, resume = [], {}
        for run in experiment.runs:
            if run.status == "succeeded":
                continue
            todo.append(run.run)
            run.status, run.started_at = "running", run.started_at or utcnow()
            if run.state_key is not None:
                resume[run.run] = decode_state(store.get(run.state_key))
        session.commit()
    log.info("training runs %s on %s (%d resumed from a stored state)", todo, device, len(resume))

    recorder = _Recorder(sessions, store, experiment_id)
    try:
        data = load_dataset(spec.dataset, data_dir, allow_download=allow_download)
        Trainer(spec, data, device).train(
            recorder.snapshot,
            resume=resume,
            runs=todo,
            on_epoch=recorder.progress,
            should_stop=recorder.cancelled,
        )
    except Cancelled:
        log.info("cancelled")
        _finish(sessions, experiment_id, "cancelled")
        return "cancelled"
    except Exception as error:
        log.exception("failed")
        _finish(sessions, experiment_id, "failed", f"{type(error).__name__}: {error}")
        raise
    log.info("succeeded")
    _finish(sessions, experiment_id, "succeeded")
    return "succeeded"

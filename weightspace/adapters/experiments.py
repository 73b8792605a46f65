"""Use cases shared by the API and the worker: submit, execute, and analyse experiments.

The API and the Celery task are thin adapters over these functions; these in turn hold no
training or analysis math, which lives in the core (``weightspace.training``,
``weightspace.analysis``).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from weightspace import analysis
from weightspace.adapters import logs
from weightspace.adapters.db import (
    Experiment,
    GramCache,
    Run,
    SnapshotRecord,
    Suite,
    utcnow,
)
from weightspace.data import load_dataset
from weightspace.snapshots import (
    ObjectStore,
    Snapshot,
    StoredVector,
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
    """Who is asking. Every query is scoped to the principal's own experiments."""

    id: str


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
    if item is None or item.owner != principal.id:
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
    query = select(Experiment).where(Experiment.owner == principal.id)
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
        experiment = session.get(Experiment, experiment_id)
        if experiment is None:  # deleted, or never committed: nothing to do
            return "missing"
        if experiment.status in TERMINAL:
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


# --------------------------------------------------------------------------- analyse


@dataclass(frozen=True)
class Selection:
    """The snapshots an analysis answers about, and the Gram matrix of exactly those."""

    records: list[SnapshotRecord]
    gram: analysis.Gram
    complete: bool


def _fingerprint(records: Sequence[SnapshotRecord]) -> str:
    text = "|".join(f"{r.run}:{r.epoch}:{r.sha256}" for r in records)
    return hashlib.sha256(text.encode()).hexdigest()


def all_snapshots(
    session: Session, store: ObjectStore, experiment: Experiment
) -> tuple[list[SnapshotRecord], analysis.Gram]:
    """All of the experiment's snapshots and their Gram matrix, cached until a snapshot arrives."""
    records = list(
        session.scalars(
            select(SnapshotRecord)
            .where(SnapshotRecord.experiment_id == experiment.id)
            .order_by(SnapshotRecord.run, SnapshotRecord.epoch)
        )
    )
    if not records:
        raise Conflict("no snapshots have been captured yet")
    fingerprint = _fingerprint(records)
    cached = session.get(GramCache, experiment.id)
    if cached is not None and cached.fingerprint == fingerprint:
        return records, analysis.Gram.from_dict(cached.gram)
    gram = analysis.gram([StoredVector(store, r.key) for r in records])
    session.merge(
        GramCache(
            experiment_id=experiment.id,
            fingerprint=fingerprint,
            snapshots=len(records),
            gram=gram.to_dict(),
            created_at=utcnow(),
        )
    )
    try:
        session.commit()
    except IntegrityError:  # a concurrent request cached the same matrix first
        session.rollback()
    return records, gram


def select_snapshots(
    session: Session,
    store: ObjectStore,
    experiment: Experiment,
    *,
    runs: Sequence[int] | None = None,
    epochs: Sequence[int] | None = None,
) -> Selection:
    spec = ExperimentSpec.model_validate(experiment.spec)
    if runs is not None and (bad := sorted(set(runs) - set(range(spec.replicas)))):
        raise InvalidQuery(
            "runs", f"runs {bad} do not exist (this experiment has runs 0..{spec.replicas - 1})"
        )
    if epochs is not None and (bad := sorted(set(epochs) - set(spec.snapshot_epochs()))):
        raise InvalidQuery(
            "epochs", f"epochs {bad} are not in the snapshot schedule {spec.snapshot_epochs()}"
        )
    records, gram = all_snapshots(session, store, experiment)
    chosen = [
        i
        for i, r in enumerate(records)
        if (runs is None or r.run in runs) and (epochs is None or r.epoch in epochs)
    ]
    if not chosen:
        raise Conflict("none of the requested snapshots has been captured yet")
    return Selection(
        records=[records[i] for i in chosen],
        gram=gram.subset(chosen),
        complete=experiment.status == "succeeded",
    )


def pca(selection: Selection, components: int) -> analysis.PCAResult:
    n = len(selection.records)
    if n < components + 1:
        raise Conflict(
            f"PCA with {components} components needs at least {components + 1} snapshots; "
            f"{n} {'are' if n != 1 else 'is'} selected"
            + ("" if selection.complete else " (the experiment is still running)")
        )
    return analysis.pca(selection.gram, components)


def default_distance_epoch(session: Session, experiment: Experiment) -> int:
    """The final epoch once every run has it, else the latest epoch that every run has reached."""
    spec = ExperimentSpec.model_validate(experiment.spec)
    by_run: dict[int, set[int]] = {r: set() for r in range(spec.replicas)}
    for run, epoch in session.execute(
        select(SnapshotRecord.run, SnapshotRecord.epoch).where(
            SnapshotRecord.experiment_id == experiment.id
        )
    ):
        by_run[run].add(epoch)
    common = set.intersection(*by_run.values())
    if not common:
        raise Conflict("no snapshot epoch has been captured for every run yet")
    return max(common)


def run_indices(records: Sequence[SnapshotRecord]) -> dict[int, list[int]]:
    """Positions of each run's snapshots in ``records`` (which are ordered by run, epoch)."""
    indices: dict[int, list[int]] = {}
    for i, record in enumerate(records):
        indices.setdefault(record.run, []).append(i)
    return indices


@dataclass(frozen=True)
class DistanceReport:
    epoch: int
    runs: list[int]
    distances: list[list[float]]
    cosine_similarity: list[list[float]]
    distance_from_origin: list[float]
    distance_from_init: list[float]
    complete: bool


def distances_at(
    session: Session, store: ObjectStore, experiment: Experiment, epoch: int | None
) -> DistanceReport:
    """Run-by-run distances at one epoch, with each run's distance from the origin and its start."""
    spec = ExperimentSpec.model_validate(experiment.spec)
    if epoch is None:
        epoch = default_distance_epoch(session, experiment)
    elif epoch not in spec.snapshot_epochs():
        raise InvalidQuery(
            "epoch", f"epoch {epoch} is not in the snapshot schedule {spec.snapshot_epochs()}"
        )
    records, gram = all_snapshots(session, store, experiment)
    at = [i for i, r in enumerate(records) if r.epoch == epoch]
    if not at:
        raise Conflict(f"epoch {epoch} has not been captured yet")
    starts = {run: positions[0] for run, positions in run_indices(records).items()}
    everything = gram.distances()
    chosen = gram.subset(at)
    return DistanceReport(
        epoch=epoch,
        runs=[records[i].run for i in at],
        distances=chosen.distances().tolist(),
        cosine_similarity=chosen.cosine().tolist(),
        distance_from_origin=chosen.norms().tolist(),
        distance_from_init=[float(everything[starts[records[i].run], i]) for i in at],
        complete=experiment.status == "succeeded",
    )


def trajectories(
    session: Session, store: ObjectStore, experiment: Experiment
) -> list[tuple[int, list[SnapshotRecord], analysis.TrajectoryMetrics]]:
    """Per run: its snapshots in epoch order and their trajectory metrics."""
    records, gram = all_snapshots(session, store, experiment)
    return [
        (run, [records[i] for i in positions], analysis.trajectory_metrics(gram, positions))
        for run, positions in run_indices(records).items()
    ]

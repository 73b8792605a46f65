"""Executing an experiment: the worker's use case (the Celery task is a thin adapter over it).

Training holds leases on its runs (renewed by a heartbeat; see :mod:`weightspace_app.infra.leases`)
and writes every snapshot and resume state to the store before the database points at them, so
the experiment can be resumed, bitwise, by any worker after a crash or a transient fault.
Transient faults (database, store) raise :class:`~weightspace_app.infra.faults.Transient` for the
caller to retry; anything else fails the experiment with a message naming the cause.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from weightspace import landscape
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
from weightspace.spec import ExperimentSpec
from weightspace.training import Cancelled, EpochProgress, Trainer
from weightspace.vocabulary import TERMINAL, Status
from weightspace_app.infra import leases, logs
from weightspace_app.infra.db import Experiment, Run, SnapshotRecord, utcnow
from weightspace_app.infra.faults import Transient, describe, is_transient

log = logging.getLogger(__name__)

#: Set when the worker process is asked to stop (SIGTERM): training stops at the next check,
#: gives its runs back and re-enqueues them, instead of holding the shutdown for a whole run.
STOPPING = threading.Event()


class HandedOver(RuntimeError):
    """Training stopped because the worker is shutting down; another one will resume it."""


#: Seconds a lease lasts unless renewed, when the caller does not say (Settings.lease_seconds).
DEFAULT_LEASE_SECONDS = 30.0


class _Recorder:
    """The trainer's callbacks: snapshots and states to the store, metadata and progress to the
    DB, each database write fenced by our lease."""

    CANCEL_POLL_SECONDS = 2.0

    def __init__(
        self,
        sessions: sessionmaker[Session],
        store: ObjectStore,
        experiment_id: uuid.UUID,
        heartbeat: leases.Heartbeat,
        gradient: Callable[[Snapshot], dict[str, Any]] | None = None,
    ) -> None:
        self.sessions = sessions
        self.store = store
        self.experiment_id = experiment_id
        self.heartbeat = heartbeat
        self.gradient = gradient  # the full-batch gradient record of a snapshot (claim 1)
        self._checked = 0.0

    def _run(self, session: Session, run: int) -> Run:
        row = session.get_one(Run, (self.experiment_id, run), with_for_update=True)
        if row.lease_owner != self.heartbeat.owner:
            raise leases.LeaseLost(f"run {run} is now trained by another worker")
        return row

    def snapshot(self, snapshot: Snapshot, state: TrainState) -> None:
        gradient = self.gradient(snapshot) if self.gradient is not None else None
        stored = put_snapshot(self.store, self.experiment_id, snapshot)
        key = state_key(self.experiment_id, state.run, state.epoch)
        self.store.put(key, encode_state(state, self.experiment_id))
        with self.sessions() as session:
            run = self._run(session, snapshot.run)
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
                    gradient=gradient,
                    created_at=utcnow(),
                    damaged=None,
                )
            )
            # Captures are stored from the trainer's writer thread, after progress() may already
            # have reported a later epoch: the latest completed epoch never goes back.
            run.epoch = max(run.epoch or 0, snapshot.epoch)
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
            run = self._run(session, progress.run)
            run.epoch, run.train_loss = progress.epoch, progress.train_loss
            session.commit()

    def should_stop(self) -> bool:
        if STOPPING.is_set():
            raise HandedOver("the worker is shutting down")
        if self.heartbeat.lost:
            raise leases.LeaseLost("the runs are now trained by another worker")
        now = time.monotonic()
        if now - self._checked < self.CANCEL_POLL_SECONDS:
            return False
        self._checked = now
        with self.sessions() as session:
            status = session.scalar(
                select(Experiment.status).where(Experiment.id == self.experiment_id)
            )
            return status == "cancelled"


def finish(
    sessions: sessionmaker[Session],
    experiment_id: uuid.UUID,
    status: Status,
    error: str | None = None,
) -> None:
    """Record the experiment's end (and its unfinished runs'), releasing every lease."""
    with sessions() as session:
        experiment = session.get(Experiment, experiment_id, with_for_update=True)
        if experiment is None:
            return
        experiment.status, experiment.error, experiment.finished_at = status, error, utcnow()
        for run in experiment.runs:
            if run.status not in TERMINAL:
                run.status = status
                run.finished_at = utcnow()
            run.lease_owner = run.lease_expires_at = None
        session.commit()


def _start(
    sessions: sessionmaker[Session],
    store: ObjectStore,
    experiment_id: uuid.UUID,
    owner: str,
    lease_seconds: float,
) -> tuple[str, ExperimentSpec | None, list[int], dict[int, TrainState]]:
    """Claim the experiment's unfinished runs; (status, spec, runs to train, resume states)."""
    with sessions() as session:
        # Locked, as a cancel or delete locks it: neither can slip between this read and commit.
        experiment = session.get(Experiment, experiment_id, with_for_update=True)
        if experiment is None:  # deleted, or never committed: nothing to do
            return "missing", None, [], {}
        if experiment.source != "train":  # uploaded: nothing to train
            return str(experiment.status), None, [], {}
        if experiment.status in TERMINAL:
            if experiment.finished_at is None:  # cancelled while its worker was lost
                experiment.finished_at = utcnow()
                session.commit()
            return str(experiment.status), None, [], {}
        if not leases.claim(experiment.runs, owner, lease_seconds):
            return "busy", None, [], {}
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
        return "running", spec, todo, resume


def execute(
    sessions: sessionmaker[Session],
    store: ObjectStore,
    experiment_id: uuid.UUID,
    *,
    device: str,
    data_dir: Path | None = None,
    allow_download: bool = False,
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
) -> str:
    """Train a queued (or interrupted) experiment to the end; return its final status.

    Safe to call again for the same experiment (a redelivered or re-enqueued task): finished runs
    are skipped and the others continue from their last stored resume state, bitwise as if never
    stopped; while another worker holds live leases on its runs, it returns ``"busy"`` at once.
    Raises :class:`Transient` for a fault worth retrying (the leases are released first).
    """
    owner = leases.identity()
    try:
        status, spec, todo, resume = _start(sessions, store, experiment_id, owner, lease_seconds)
    except Exception as error:
        if is_transient(error):
            raise Transient(error) from error
        raise
    if spec is None:
        log.info("nothing to do: the experiment is %s", status)
        return status
    log.info("training runs %s on %s (%d resumed from a stored state)", todo, device, len(resume))
    heartbeat = leases.Heartbeat(sessions, experiment_id, owner, lease_seconds)
    heartbeat.start()
    recorder = _Recorder(sessions, store, experiment_id, heartbeat)
    try:
        data = load_dataset(spec.dataset, data_dir, allow_download=allow_download)
        recorder.gradient = lambda snapshot: landscape.gradient_norms(
            spec, data, snapshot.params, device=device
        ).to_dict()
        Trainer(spec, data, device).train(
            recorder.snapshot,
            resume=resume,
            runs=todo,
            on_epoch=recorder.progress,
            should_stop=recorder.should_stop,
        )
    except Cancelled:
        log.info("cancelled")
        finish(sessions, experiment_id, "cancelled")
        return "cancelled"
    except leases.LeaseLost as lost:
        log.warning("stopped: %s", lost)
        return "lost"
    except HandedOver:
        log.info("worker shutting down: runs handed back and re-enqueued")
        leases.hand_over(sessions, experiment_id, owner)
        return "handed over"
    except Exception as error:
        if is_transient(error):
            log.warning("transient fault, will retry: %s", describe(error))
            # If the database is what failed, the lease expires instead.
            with contextlib.suppress(Exception):
                leases.release(sessions, experiment_id, owner)
            raise Transient(error) from error
        log.exception("failed")
        finish(sessions, experiment_id, "failed", describe(error))
        raise
    finally:
        heartbeat.stop()
    log.info("succeeded")
    finish(sessions, experiment_id, "succeeded")
    return "succeeded"

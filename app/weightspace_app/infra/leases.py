"""Run leases: a worker holds its runs for ``lease_seconds`` and renews them from a heartbeat
thread; the reaper re-enqueues experiments whose leases ran out (their worker died).

A lease is checked under the experiment's row lock (PostgreSQL ``SELECT ... FOR UPDATE``;
SQLite serialises writers), so two workers never train the same run at once: the second one
finds a live lease held by someone else and leaves. Every write of a run's progress is fenced
by the lease too (a worker that lost it stops instead of overwriting).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from weightspace.vocabulary import ACTIVE, TERMINAL
from weightspace_app.infra import outbox
from weightspace_app.infra.db import Experiment, OutboxEntry, Run, utcnow
from weightspace_app.infra.queue import TRAIN_TASK

log = logging.getLogger(__name__)


class LeaseLost(RuntimeError):
    """Another worker took this experiment's runs over (our lease had expired)."""


def identity() -> str:
    """This process, as a lease owner: host, pid and a random part (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _live(run: Run, now: datetime) -> bool:
    return run.lease_owner is not None and (
        run.lease_expires_at is not None and run.lease_expires_at > now
    )


def claim(runs: Iterable[Run], owner: str, seconds: float) -> bool:
    """Take the lease of every unfinished run, unless another owner holds a live one."""
    now = utcnow()
    unfinished = [r for r in runs if r.status not in TERMINAL]
    if any(_live(r, now) and r.lease_owner != owner for r in unfinished):
        return False
    for run in unfinished:
        run.lease_owner, run.lease_expires_at = owner, now + timedelta(seconds=seconds)
    return True


def holds(session: Session, experiment_id: uuid.UUID, run: int, owner: str) -> bool:
    held = session.scalar(
        select(Run.lease_owner).where(Run.experiment_id == experiment_id, Run.run == run)
    )
    return held == owner


def renew(
    sessions: sessionmaker[Session], experiment_id: uuid.UUID, owner: str, seconds: float
) -> int:
    """Extend our leases; return how many unfinished runs we still hold."""
    with sessions() as session:
        result = session.execute(
            update(Run)
            .where(
                Run.experiment_id == experiment_id,
                Run.lease_owner == owner,
                Run.status.not_in(TERMINAL),
            )
            .values(lease_expires_at=utcnow() + timedelta(seconds=seconds))
        )
        session.commit()
        return int(result.rowcount)  # type: ignore[attr-defined]


def release(sessions: sessionmaker[Session], experiment_id: uuid.UUID, owner: str) -> None:
    """Give our leases up (a transient fault: whoever retries may take them at once)."""
    with sessions() as session:
        session.execute(
            update(Run)
            .where(Run.experiment_id == experiment_id, Run.lease_owner == owner)
            .values(lease_owner=None, lease_expires_at=None)
        )
        session.commit()


def hand_over(sessions: sessionmaker[Session], experiment_id: uuid.UUID, owner: str) -> None:
    """Release our leases and re-enqueue the experiment, in one transaction (a graceful stop)."""
    with sessions() as session:
        experiment = session.get_one(Experiment, experiment_id)
        session.execute(
            update(Run)
            .where(Run.experiment_id == experiment_id, Run.lease_owner == owner)
            .values(lease_owner=None, lease_expires_at=None)
        )
        outbox.add_training(session, experiment)
        session.commit()


class Heartbeat(threading.Thread):
    """Renews the leases every ``seconds / 3``; ``lost`` once they are no longer ours.

    A database blip is tolerated (the lease outlives two missed beats); training is stopped
    only when the database answers that someone else holds the runs.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        experiment_id: uuid.UUID,
        owner: str,
        seconds: float,
    ) -> None:
        super().__init__(name=f"lease-{experiment_id}", daemon=True)
        self.sessions, self.experiment_id = sessions, experiment_id
        self.owner, self.seconds = owner, seconds
        self.lost = False
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.seconds / 3):
            try:
                if renew(self.sessions, self.experiment_id, self.owner, self.seconds) == 0:
                    self.lost = self._still_training()
            except Exception as error:  # the database blinked: try again at the next beat
                log.warning("could not renew the lease: %s", type(error).__name__)

    def _still_training(self) -> bool:
        """Whether unfinished runs remain that are not ours (else nothing was lost)."""
        with self.sessions() as session:
            others = session.scalar(
                select(func.count())
                .select_from(Run)
                .where(
                    Run.experiment_id == self.experiment_id,
                    Run.status.not_in(TERMINAL),
                    Run.lease_owner.is_distinct_from(self.owner),
                )
            )
            return bool(others)

    def stop(self) -> None:
        self._stop_event.set()


def _recently_enqueued(session: Session, experiment_id: uuid.UUID, since: datetime) -> bool:
    """An entry that is still pending, or was created after ``since``."""
    return bool(
        session.scalar(
            select(func.count())
            .select_from(OutboxEntry)
            .where(
                OutboxEntry.experiment_id == experiment_id,
                (OutboxEntry.sent_at.is_(None)) | (OutboxEntry.created_at > since),
            )
        )
    )


def reap(
    sessions: sessionmaker[Session], *, lease_seconds: float, requeue_after: float
) -> list[uuid.UUID]:
    """Re-enqueue (through the outbox) each experiment that nobody is training: ``running``
    with no live lease (its worker died), or ``queued`` with its task published more than
    ``requeue_after`` seconds ago (the task was lost). Returns their ids."""
    now = utcnow()
    requeued: list[uuid.UUID] = []
    with sessions() as session:
        live = (
            select(Run.experiment_id)
            .where(
                Run.status.not_in(TERMINAL),
                Run.lease_owner.is_not(None),
                Run.lease_expires_at > now,
            )
            .scalar_subquery()
        )
        candidates = session.execute(
            select(Experiment.id, Experiment.status, Experiment.queue).where(
                Experiment.status.in_(ACTIVE),
                ~Experiment.id.in_(live),
            )
        ).all()
        for experiment_id, status, queue in candidates:
            wait = lease_seconds if status == "running" else requeue_after
            if _recently_enqueued(session, experiment_id, now - timedelta(seconds=wait)):
                continue
            outbox.add(session, TRAIN_TASK, [str(experiment_id)], queue, experiment_id)
            requeued.append(experiment_id)
        session.commit()
    for experiment_id in requeued:
        log.warning("re-enqueued experiment %s: nobody holds its lease", experiment_id)
    return requeued

"""Transactional outbox: tasks are written in the transaction that makes them due, then published.

``submit`` inserts the experiment and its outbox entry in one transaction, so a committed
experiment always gets its task, and a broker that is down or black-holed never leaves a row
without one (nor a request hanging): the :class:`Relay` publishes pending entries, each within a
deadline, and marks them sent; what fails stays pending for the next round. Publishing twice is
harmless (the worker's lease check makes a duplicate task a no-op); losing one is not.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from weightspace_app.infra.db import Experiment, OutboxEntry, Suite, utcnow
from weightspace_app.infra.faults import describe
from weightspace_app.infra.queue import TRAIN_TASK

log = logging.getLogger(__name__)

#: ``publish(task, args, queue)``: send one task to the broker (raises if it cannot).
Publish = Callable[[str, list[Any], str], None]


def add(
    session: Session,
    task: str,
    args: list[Any],
    queue: str,
    experiment_id: uuid.UUID | None = None,
) -> OutboxEntry:
    """Add an entry to ``session`` (the caller commits it with whatever made it due)."""
    entry = OutboxEntry(
        task=task,
        args=args,
        queue=queue,
        experiment_id=experiment_id,
        created_at=utcnow(),
        attempts=0,
    )
    session.add(entry)
    return entry


def add_training(session: Session, experiment: Experiment) -> OutboxEntry:
    return add(session, TRAIN_TASK, [str(experiment.id)], experiment.queue, experiment.id)


def add_trainings(session: Session, created: Experiment | Suite) -> None:
    """The training tasks of a new experiment (or of a suite's experiments), added to the
    session that inserts it, so that both commit or neither does."""
    session.flush()  # the experiments' rows first: the entries refer to them
    for experiment in created.experiments if isinstance(created, Suite) else [created]:
        if experiment.source == "train":  # an uploaded experiment has nothing to train
            add_training(session, experiment)


class Relay:
    """Publishes pending entries in order, each within ``timeout`` seconds.

    A publish that outlives its deadline (a broker that accepts connections and never answers)
    is abandoned in its daemon thread and the round ends; no new publish starts while it hangs,
    so a black hole costs one thread, not one per round.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        publish: Publish,
        *,
        timeout: float = 5.0,
        batch: int = 100,
    ) -> None:
        self.sessions = sessions
        self.publish = publish
        self.timeout = timeout
        self.batch = batch
        self._hung: threading.Thread | None = None
        self._lock = threading.Lock()

    def _send(self, entry: OutboxEntry) -> str | None:
        """Publish one entry; the error (None if sent)."""
        outcome: list[BaseException | None] = []
        task, args, queue = entry.task, list(entry.args), entry.queue

        def attempt() -> None:
            try:
                self.publish(task, args, queue)
                outcome.append(None)
            except BaseException as error:  # reported below, in the relay's thread
                outcome.append(error)

        thread = threading.Thread(target=attempt, name="outbox-publish", daemon=True)
        thread.start()
        thread.join(self.timeout)
        if thread.is_alive():
            self._hung = thread
            return f"the broker did not answer within {self.timeout:g} s"
        error = outcome[0] if outcome else RuntimeError("publish ended without an outcome")
        return None if error is None else describe(error)

    def relay_once(self) -> int:
        """Publish what is pending; return how many were sent."""
        if not self._lock.acquire(blocking=False):
            return 0  # another thread of this process is relaying
        try:
            if self._hung is not None and self._hung.is_alive():
                return 0
            self._hung = None
            sent = 0
            with self.sessions() as session:
                query = (
                    select(OutboxEntry)
                    .where(OutboxEntry.sent_at.is_(None))
                    .order_by(OutboxEntry.id)
                    .limit(self.batch)
                )
                if session.get_bind().dialect.name == "postgresql":
                    query = query.with_for_update(skip_locked=True)
                for entry in session.scalars(query).all():
                    error = self._send(entry)
                    entry.attempts += 1
                    if error is None:
                        entry.sent_at, entry.last_error = utcnow(), None
                        sent += 1
                        continue
                    entry.last_error = error[:500]
                    log.warning("could not publish %s %s: %s", entry.task, entry.args, error)
                    break  # the broker is down: the rest wait for the next round
                session.commit()
            return sent
        finally:
            self._lock.release()

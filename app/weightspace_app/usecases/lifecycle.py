"""Cancel, delete and retry experiments and suites.

Every transition locks the experiment's row (``SELECT ... FOR NO KEY UPDATE`` on PostgreSQL;
SQLite serialises writers anyway), as the worker does when it starts one, so that a cancel or
delete never races a worker picking the experiment up. ``NO KEY``: a running worker's snapshot
inserts (whose foreign key check takes ``KEY SHARE`` on the row while it holds its run's lock)
go on, so a cancel waits for them instead of deadlocking with them.

- Cancel: a queued experiment is cancelled at once; a running one is marked cancelled and its
  worker stops within seconds (it polls), keeping the snapshots it stored; until the worker has
  stopped, ``finished_at`` stays empty.
- Delete: the rows and every stored object under the experiment's prefix (snapshots, resume
  states, cached Gram matrices), and the stored requests and cached Grams of analyses across
  experiments that include it; refused (409) while a worker may still write there. The objects
  are swept again after the commit, against an analysis caching a Gram concurrently.
- Retry: a failed or cancelled experiment is queued again; its runs continue from their last
  stored resume state (finished runs are kept).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from weightspace.snapshots import ObjectStore, StoreUnavailable, experiment_prefix
from weightspace.vocabulary import TERMINAL
from weightspace_app.access import Conflict, Principal
from weightspace_app.infra import outbox
from weightspace_app.infra.db import Experiment, Suite, utcnow
from weightspace_app.usecases import joint
from weightspace_app.usecases.experiments import get_locked, get_owned

log = logging.getLogger(__name__)

RETRYABLE = frozenset({"failed", "cancelled"})


def _lock_experiments(session: Session, suite: Suite) -> list[Experiment]:
    return list(
        session.scalars(
            select(Experiment)
            .where(Experiment.suite_id == suite.id)
            .order_by(Experiment.created_at)
            .with_for_update(key_share=True)
        )
    )


def stopped(experiment: Experiment) -> bool:
    """No worker writes for it any more: ended, or cancelled and its worker has let go."""
    if experiment.status in ("succeeded", "failed"):
        return True
    if experiment.status == "cancelled":
        return experiment.finished_at is not None
    return False


# --------------------------------------------------------------------------- cancel


def _cancel(experiment: Experiment) -> bool:
    """Cancel one experiment (row locked); False if it had already ended."""
    if experiment.status in TERMINAL:
        return False
    now = utcnow()
    # An uploaded experiment has no worker: cancelling it stops it at once.
    running = experiment.status == "running" and experiment.source == "train"
    experiment.status, experiment.error = "cancelled", None
    if not running:  # no worker holds it: it has stopped already
        experiment.finished_at = now
    for run in experiment.runs:
        if run.status not in TERMINAL:
            run.status, run.finished_at = "cancelled", now
    return True


def cancel_experiment(
    session: Session, principal: Principal, experiment_id: uuid.UUID
) -> Experiment:
    """Cancel a queued or running experiment; cancelling a cancelled one changes nothing."""
    experiment = get_locked(session, principal, Experiment, experiment_id)
    if experiment.status in ("succeeded", "failed"):
        session.rollback()
        raise Conflict(f"the experiment has already {experiment.status}")
    _cancel(experiment)
    session.commit()
    return experiment


def cancel_suite(session: Session, principal: Principal, suite_id: uuid.UUID) -> Suite:
    """Cancel every experiment of the suite that has not ended."""
    suite = get_locked(session, principal, Suite, suite_id)
    for experiment in _lock_experiments(session, suite):
        _cancel(experiment)
    session.commit()
    session.refresh(suite)
    return suite


# --------------------------------------------------------------------------- delete


def _refuse_unless_stopped(experiments: Sequence[Experiment]) -> None:
    for experiment in experiments:
        if experiment.status == "running":
            raise Conflict(f"experiment {experiment.id} is running: cancel it first")
        if experiment.status == "cancelled" and not stopped(experiment):
            raise Conflict(
                f"experiment {experiment.id} is being cancelled; its worker stops within "
                "seconds: try again then"
            )


def _delete_objects(
    store: ObjectStore, experiments: Sequence[uuid.UUID], prefixes: Sequence[str] = ()
) -> None:
    """Delete the experiments' objects (and the analyses across experiments that include
    them: ``joint.forget``) and whatever is under ``prefixes``."""
    try:
        for experiment_id in experiments:
            joint.forget(store, experiment_id)
            store.delete_prefix(experiment_prefix(experiment_id))
        for prefix in prefixes:
            store.delete_prefix(prefix)
    except StoreUnavailable:
        raise
    except Exception as error:  # e.g. S3 refused or unreachable: nothing is deleted from the DB
        raise StoreUnavailable(f"the snapshot store could not delete objects: {error}") from error


def _sweep(store: ObjectStore, experiments: Sequence[uuid.UUID]) -> None:
    """Delete the experiments' objects once more, after the rows are gone: a Gram (or joint
    request) that a concurrent analysis wrote between the first deletion and the commit is
    caught here, one written after the commit by the writer's own check (gram_store.gram_of)."""
    try:
        _delete_objects(store, experiments)
    except StoreUnavailable as error:
        log.warning("could not sweep the objects of deleted experiments: %s", error)


def delete_experiment(
    session: Session, store: ObjectStore, principal: Principal, experiment_id: uuid.UUID
) -> None:
    """Delete the experiment's objects, then its rows (runs, snapshots, caches cascade).

    Objects go first: should the store fail, the experiment is still listed and can be deleted
    again; no row ever points at a deleted object that a caller could still reach.
    """
    experiment = get_locked(session, principal, Experiment, experiment_id)
    try:
        if experiment.suite_id is not None:
            raise Conflict(
                f"the experiment belongs to suite {experiment.suite_id}: delete the suite"
            )
        _refuse_unless_stopped([experiment])
        _delete_objects(store, [experiment.id])
    except Exception:
        session.rollback()
        raise
    session.delete(experiment)
    session.commit()
    _sweep(store, [experiment_id])


def suite_prefix(suite_id: uuid.UUID) -> str:
    return f"suites/{suite_id.hex}/"


def delete_suite(
    session: Session, store: ObjectStore, principal: Principal, suite_id: uuid.UUID
) -> None:
    """Delete the suite, its experiments and their objects, and its report."""
    suite = get_locked(session, principal, Suite, suite_id)
    experiments = _lock_experiments(session, suite)
    try:
        _refuse_unless_stopped(experiments)
        _delete_objects(store, [e.id for e in experiments], [suite_prefix(suite.id)])
    except Exception:
        session.rollback()
        raise
    ids = [e.id for e in experiments]
    for experiment in experiments:
        session.delete(experiment)
    session.delete(suite)
    session.commit()
    _sweep(store, ids)


# --------------------------------------------------------------------------- retry


def _requeue(session: Session, experiment: Experiment) -> None:
    """Queued again, with its task in the outbox (published once this transaction commits)."""
    outbox.add_training(session, experiment)
    experiment.status, experiment.error, experiment.finished_at = "queued", None, None
    for run in experiment.runs:
        if run.status != "succeeded":
            run.status, run.finished_at = "queued", None


def retryable(
    session: Session, principal: Principal, kind: type[Experiment] | type[Suite], item_id: uuid.UUID
) -> int:
    """How many experiments a retry of the experiment or suite would queue (404 if not the
    caller's); counted before the retry, against the caller's quotas."""
    if kind is Suite:
        experiments = get_owned(session, principal, Suite, item_id).experiments
    else:
        experiments = [get_owned(session, principal, Experiment, item_id)]
    return sum(1 for e in experiments if e.status in RETRYABLE)


def retry_experiment(
    session: Session, principal: Principal, experiment_id: uuid.UUID
) -> tuple[Experiment, str]:
    """Queue a failed or cancelled experiment again (its task committed to the outbox with
    it); returns it and its previous status."""
    experiment = get_locked(session, principal, Experiment, experiment_id)
    previous = experiment.status
    if experiment.source != "train":
        session.rollback()
        raise Conflict("an uploaded experiment is not trained by the service: nothing to retry")
    if previous not in RETRYABLE or not stopped(experiment):
        session.rollback()
        raise Conflict(
            f"only a failed or cancelled experiment can be retried; this one is {previous}"
            + (" (its worker is still stopping)" if previous == "cancelled" else "")
        )
    _requeue(session, experiment)
    session.commit()
    return experiment, previous


def retry_suite(
    session: Session, store: ObjectStore, principal: Principal, suite_id: uuid.UUID
) -> tuple[Suite, list[Experiment]]:
    """Queue the suite's failed and cancelled experiments again and reset its report (rebuilt
    when they have all ended). Returns the suite and the experiments to enqueue."""
    suite = get_locked(session, principal, Suite, suite_id)
    experiments = _lock_experiments(session, suite)
    retried = [e for e in experiments if e.status in RETRYABLE]
    try:
        if not retried:
            raise Conflict("the suite has no failed or cancelled experiment to retry")
        _refuse_unless_stopped(retried)
        if suite.report_status == "building":
            raise Conflict("the suite's report is being built: retry when it is done")
        _delete_objects(store, [], [suite_prefix(suite.id)])
    except Exception:
        session.rollback()
        raise
    for experiment in retried:
        _requeue(session, experiment)
    suite.report_status, suite.report_files, suite.claims, suite.report_error = (
        "pending",
        None,
        None,
        None,
    )
    session.commit()
    session.refresh(suite)
    return suite, retried

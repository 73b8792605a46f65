"""Use cases shared by the API and the worker: submit and read experiments.

Executing one is in :mod:`weightspace.adapters.execution` (re-exported here as ``execute``),
analyses are in :mod:`weightspace.adapters.analyses`.

The API and the Celery task are thin adapters over these functions; these in turn hold no
training or analysis math, which lives in the core (``weightspace.training``,
``weightspace.analysis``).
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from weightspace.adapters import outbox
from weightspace.adapters.access import ANONYMOUS as ANONYMOUS
from weightspace.adapters.access import Conflict as Conflict
from weightspace.adapters.access import InvalidQuery as InvalidQuery
from weightspace.adapters.access import NotFound as NotFound
from weightspace.adapters.access import Principal as Principal
from weightspace.adapters.db import (
    Experiment,
    Run,
    SnapshotRecord,
    Suite,
    utcnow,
)
from weightspace.adapters.execution import execute as execute  # re-exported
from weightspace.spec import ExperimentSpec, plan_runs

log = logging.getLogger(__name__)


def no_model(what: str) -> str:
    """Why ``what`` (landscape planes, barriers) cannot be computed from uploaded snapshots."""
    return (
        f"{what} need the model that produced the snapshots; this experiment's snapshots were "
        "uploaded, so the service has no model (or data) to evaluate them"
    )


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
    """Insert the experiment, its runs and its task's outbox entry in one transaction; the
    outbox relay publishes the task (see :mod:`weightspace.adapters.outbox`)."""
    experiment = new_experiment(principal, spec, queue)
    session.add(experiment)
    outbox.add_trainings(session, experiment)
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


def get_locked(
    session: Session, principal: Principal, kind: type[Owned], item_id: uuid.UUID
) -> Owned:
    """The row, re-read and locked until the transaction ends (``SELECT ... FOR NO KEY UPDATE``
    on PostgreSQL; SQLite serialises writers anyway); 404 as :func:`get_owned`. ``NO KEY``: a
    running worker's snapshot inserts (whose foreign key check takes ``KEY SHARE`` on the row)
    go on."""
    item = session.scalars(
        select(kind)
        .where(kind.id == item_id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    ).one_or_none()
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


def damaged_snapshots(session: Session, experiment: Experiment) -> list[SnapshotRecord]:
    """The experiment's snapshots that a reader found missing or corrupt."""
    return list(
        session.scalars(
            select(SnapshotRecord)
            .where(
                SnapshotRecord.experiment_id == experiment.id, SnapshotRecord.damaged.is_not(None)
            )
            .order_by(SnapshotRecord.run, SnapshotRecord.epoch)
        )
    )

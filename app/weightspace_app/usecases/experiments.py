"""Use cases shared by the API and the worker: submit and read experiments.

Executing one is in :mod:`weightspace_app.usecases.execution`,
analyses are in :mod:`weightspace_app.usecases.analyses`.

The API and the Celery task are thin adapters over these functions; these in turn hold no
training or analysis math, which lives in the core (``weightspace.training``,
``weightspace.analysis``).
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from weightspace.spec import ExperimentSpec, plan_runs
from weightspace_app.access import NotFound, Principal
from weightspace_app.infra.db import (
    Experiment,
    ExperimentTag,
    Run,
    SnapshotRecord,
    Suite,
    utcnow,
)

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
    tag: str | None = None,
) -> list[Experiment]:
    """Newest first; ``after`` is the (created_at, id) of the last item of the previous page."""
    # Runs in one more statement for the whole page (not one per experiment).
    query = select(Experiment).options(selectinload(Experiment.runs))
    if not principal.admin:
        query = query.where(Experiment.owner == principal.id)
    if status is not None:
        query = query.where(Experiment.status == status)
    if tag is not None:
        query = query.where(
            select(ExperimentTag.tag)
            .where((ExperimentTag.experiment_id == Experiment.id) & (ExperimentTag.tag == tag))
            .exists()
        )
    if after is not None:
        created, last_id = after
        query = query.where(
            (Experiment.created_at < created)
            | ((Experiment.created_at == created) & (Experiment.id < last_id))
        )
    query = query.order_by(Experiment.created_at.desc(), Experiment.id.desc()).limit(limit)
    return list(session.scalars(query))


def annotate(
    session: Session,
    principal: Principal,
    experiment_id: uuid.UUID,
    *,
    tags: list[str] | None = None,
    note: str | None = None,
    set_note: bool = False,
) -> Experiment:
    """Replace the experiment's tags (when ``tags`` is given) and its note (when ``set_note``);
    any state, any source: they describe it, they change nothing it computes."""
    experiment = get_locked(session, principal, Experiment, experiment_id)
    if tags is not None:
        kept = {row.tag: row for row in experiment.tag_rows if row.tag in tags}
        experiment.tag_rows = [kept.get(tag) or ExperimentTag(tag=tag) for tag in sorted(set(tags))]
    if set_note:
        experiment.note = note if note and note.strip() else None
    session.commit()
    return experiment


def display_names(
    session: Session, principal: Principal, ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, str]:
    """What figures and tables call each experiment: its name, or the start of its id when it has
    none; a name that two of them share gets the start of the id beside it."""
    found = {i: get_experiment(session, principal, i) for i in dict.fromkeys(ids)}
    shared = Counter(e.name for e in found.values() if e.name)
    names = {}
    for i, experiment in found.items():
        short = str(i)[:8]
        name = experiment.name
        names[i] = short if not name else name if shared[name] == 1 else f"{name} ({short})"
    return names


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

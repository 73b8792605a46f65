"""Use cases for an experiment's loss barriers (claim 4), and its snapshots as a core result.

``GET /experiments/{id}/barriers`` asks for them: the first request marks them queued (once, by
an atomic update) and the caller enqueues the job; the worker computes them through the core
(:func:`weightspace.landscape.barriers`), caches the JSON in the object store and marks them
ready; later requests read the cache. The report job uses the same cache.
"""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from weightspace import landscape
from weightspace.adapters.analyses import all_snapshots
from weightspace.adapters.db import Experiment
from weightspace.adapters.experiments import Conflict
from weightspace.claims import BarrierReport, ExperimentResult
from weightspace.data import load_dataset
from weightspace.snapshots import ObjectStore, get_snapshot
from weightspace.spec import ExperimentSpec

log = logging.getLogger(__name__)


def barriers_key(experiment_id: uuid.UUID) -> str:
    return f"experiments/{experiment_id.hex}/barriers.json"


def result_of(
    session: Session, store: ObjectStore, experiment: Experiment, title: str | None = None
) -> ExperimentResult:
    """The experiment's snapshots as the core's result: metrics, gradients, Gram, vectors."""
    records, gram = all_snapshots(session, store, experiment)
    keys = [(r.key, r.sha256) for r in records]
    return ExperimentResult(
        role=experiment.role or "",
        title=title or experiment.name or str(experiment.id),
        spec=ExperimentSpec.model_validate(experiment.spec),
        runs=[r.run for r in records],
        epochs=[r.epoch for r in records],
        metrics=[r.metrics for r in records],
        gram=gram,
        gradients=[r.gradient for r in records],
        vector=lambda i: get_snapshot(store, *keys[i]).params,
    )


def request_barriers(session: Session, experiment: Experiment) -> bool:
    """Whether this request queued the job (the caller enqueues it); Conflict if it cannot run."""
    if experiment.status != "succeeded":
        raise Conflict(
            f"barriers are computed once the experiment has succeeded; it is {experiment.status}"
        )
    if experiment.barriers_status == "failed":
        raise Conflict(f"computing the barriers failed: {experiment.barriers_error}")
    if experiment.barriers_status is not None:
        return False
    claimed = session.execute(
        update(Experiment)
        .where(Experiment.id == experiment.id, Experiment.barriers_status.is_(None))
        .values(barriers_status="queued")
    )
    session.commit()
    return bool(claimed.rowcount == 1)  # type: ignore[attr-defined]


def undo_request(session: Session, experiment_id: uuid.UUID) -> None:
    """The job could not be enqueued: forget the request, so the next one tries again."""
    session.execute(
        update(Experiment).where(Experiment.id == experiment_id).values(barriers_status=None)
    )
    session.commit()


def cached(store: ObjectStore, experiment: Experiment) -> dict[str, Any] | None:
    if experiment.barriers_status != "ready":
        return None
    document: dict[str, Any] = json.loads(store.get(barriers_key(experiment.id)))
    return document


def compute_barriers(
    sessions: sessionmaker[Session],
    store: ObjectStore,
    experiment_id: uuid.UUID,
    *,
    device: str = "cpu",
    data_dir: Path | None = None,
    allow_download: bool = False,
) -> BarrierReport:
    """Compute (or read from the cache) and store the experiment's barriers; mark them ready."""
    with sessions() as session:
        experiment = session.get_one(Experiment, experiment_id)
        if (document := cached(store, experiment)) is not None:
            return BarrierReport.from_dict(document)
        try:
            result = result_of(session, store, experiment)
            data = load_dataset(result.spec.dataset, data_dir, allow_download=allow_download)
            report = landscape.barriers(result, data, device=device)
            store.put(barriers_key(experiment_id), json.dumps(report.to_dict()).encode())
            experiment.barriers_status, experiment.barriers_error = "ready", None
            session.commit()
            log.info("barriers of %d lines stored", len(report.lines))
            return report
        except Exception as error:
            session.rollback()
            experiment = session.get_one(Experiment, experiment_id)
            experiment.barriers_status = "failed"
            experiment.barriers_error = f"{type(error).__name__}: {error}"
            session.commit()
            raise

"""Use cases for an experiment's loss barriers (claim 4), and its snapshots as a core result.

``GET /experiments/{id}/barriers`` asks for them: a cached worker job (:mod:`.jobs`, like the
landscape planes): the first request queues it (once) and the caller enqueues the task; the
worker computes them through the core (:func:`weightspace.landscape.barriers`), caches the JSON
in the object store and marks them ready; later requests read the cache. The report job uses the
same cache.
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from weightspace import landscape
from weightspace.claims import BarrierReport, ExperimentResult
from weightspace.data import DATASETS, load_dataset
from weightspace.models import declared_layout
from weightspace.snapshots import ObjectStore, get_snapshot
from weightspace_app.access import Conflict, Unsupported
from weightspace_app.infra.db import Experiment
from weightspace_app.usecases import jobs
from weightspace_app.usecases.analyses import all_snapshots
from weightspace_app.usecases.landscapes import evaluation_spec, model_vector, without_model

log = logging.getLogger(__name__)


def barriers_key(experiment_id: uuid.UUID) -> str:
    return f"experiments/{experiment_id.hex}/barriers.json"


def result_of(
    session: Session, store: ObjectStore, experiment: Experiment, title: str | None = None
) -> ExperimentResult:
    """The experiment's snapshots as the core's result: metrics, gradients, Gram, vectors."""
    spec = evaluation_spec(experiment)
    if spec is None:
        raise Unsupported(without_model(experiment.id, "barriers"))
    records, gram = all_snapshots(session, store, experiment)
    keys = [(r.key, r.sha256) for r in records]
    order = declared_layout(spec.model, DATASETS[spec.dataset.name].input_shape)
    return ExperimentResult(
        role=experiment.role or "",
        title=title or experiment.name or str(experiment.id),
        spec=spec,
        runs=[r.run for r in records],
        epochs=[r.epoch for r in records],
        metrics=[r.metrics for r in records],
        gram=gram,
        gradients=[r.gradient for r in records],
        vector=lambda i: model_vector(get_snapshot(store, *keys[i]), order),
    )


def job_key(experiment_id: uuid.UUID) -> str:
    """The barriers' row among the cached jobs (:mod:`.jobs`)."""
    return f"barriers/{experiment_id.hex}"


def request_barriers(session: Session, experiment: Experiment) -> bool:
    """Whether this request queued the job (the caller enqueues it); Conflict if it cannot run."""
    if evaluation_spec(experiment) is None:
        raise Unsupported(without_model(experiment.id, "barriers"))
    if experiment.status != "succeeded":
        raise Conflict(
            f"barriers are computed once the experiment has succeeded; it is {experiment.status}"
        )
    return jobs.request(session, job_key(experiment.id), experiment.owner, experiment.id)


def undo_request(session: Session, experiment_id: uuid.UUID) -> None:
    """The job could not be enqueued: forget the request, so the next one tries again."""
    jobs.undo(session, job_key(experiment_id))


def cached(session: Session, store: ObjectStore, experiment: Experiment) -> dict[str, Any] | None:
    """The stored barriers once ready; Conflict if computing them failed; None otherwise."""
    return jobs.cached(session, store, job_key(experiment.id), barriers_key(experiment.id))


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

    def compute(session: Session) -> dict[str, Any]:
        experiment = session.get_one(Experiment, experiment_id)
        result = result_of(session, store, experiment)
        data = load_dataset(result.spec.dataset, data_dir, allow_download=allow_download)
        report = landscape.barriers(result, data, device=device)
        log.info("barriers of %d lines computed", len(report.lines))
        return report.to_dict()

    with sessions() as session:
        owner = session.get_one(Experiment, experiment_id).owner
    document = jobs.run(
        sessions,
        store,
        job_key(experiment_id),
        compute,
        owner=owner,
        experiment_id=experiment_id,
        stored_at=barriers_key(experiment_id),
    )
    return BarrierReport.from_dict(document)

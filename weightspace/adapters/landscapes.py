"""Use cases for an experiment's landscape planes (``GET /experiments/{id}/landscape``).

A plane (one run, resolution, margin, normalisation) is a cached worker job (:mod:`.jobs`): the
first request checks that it can be computed and queues it; the worker reads the run's snapshots
and computes it through the core (:func:`weightspace.planes.landscape_plane`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from weightspace import planes
from weightspace.adapters import jobs
from weightspace.adapters.db import Experiment, SnapshotRecord
from weightspace.adapters.experiments import Conflict, InvalidQuery, no_model
from weightspace.data import load_dataset
from weightspace.snapshots import ObjectStore, experiment_prefix, get_snapshot
from weightspace.spec import ExperimentSpec

#: The fewest snapshots a run needs for a plane of two principal components.
MIN_SNAPSHOTS = 3


@dataclass(frozen=True)
class Options:
    run: int = 0
    resolution: int = planes.DEFAULT_RESOLUTION
    margin: float = planes.DEFAULT_MARGIN
    normalisation: planes.Normalisation = "none"

    def key(self, experiment_id: uuid.UUID) -> str:
        return (
            f"landscape/{experiment_id.hex}/run{self.run}-res{self.resolution}"
            f"-margin{self.margin!r}-{self.normalisation}"
        )

    def stored_at(self, experiment_id: uuid.UUID) -> str:
        """Where the plane's JSON is kept: under the experiment's prefix, deleted with it."""
        return (
            f"{experiment_prefix(experiment_id)}landscapes/run{self.run}-res{self.resolution}"
            f"-margin{self.margin!r}-{self.normalisation}.json"
        )

    def to_args(self) -> list[Any]:
        return [self.run, self.resolution, self.margin, self.normalisation]


def _records(session: Session, experiment_id: uuid.UUID, run: int) -> list[SnapshotRecord]:
    return list(
        session.scalars(
            select(SnapshotRecord)
            .where(SnapshotRecord.experiment_id == experiment_id, SnapshotRecord.run == run)
            .order_by(SnapshotRecord.epoch)
        )
    )


def check(session: Session, experiment: Experiment, options: Options) -> None:
    """Raise Conflict (409) or InvalidQuery (422) if the plane cannot be computed."""
    if experiment.source != "train":
        raise Conflict(no_model("landscape planes"))
    if experiment.status != "succeeded":
        raise Conflict(
            f"landscape planes are computed once the experiment has succeeded; it is "
            f"{experiment.status}"
        )
    replicas = ExperimentSpec.model_validate(experiment.spec).replicas
    if options.run >= replicas:
        raise InvalidQuery(
            "run", f"run {options.run} does not exist (this experiment has runs 0..{replicas - 1})"
        )
    records = _records(session, experiment.id, options.run)
    if damaged := [r.epoch for r in records if r.damaged]:
        raise Conflict(f"run {options.run} has damaged snapshots at epochs {damaged}")
    if len(records) < MIN_SNAPSHOTS:
        raise Conflict(
            f"a plane of two principal components needs at least {MIN_SNAPSHOTS} snapshots of "
            f"the run; run {options.run} has {len(records)}"
        )


def compute(
    session: Session,
    store: ObjectStore,
    experiment_id: uuid.UUID,
    options: Options,
    *,
    device: str = "cpu",
    data_dir: Path | None = None,
    allow_download: bool = False,
) -> dict[str, Any]:
    """The plane's JSON document (see :meth:`weightspace.planes.LandscapePlane.to_dict`)."""
    experiment = session.get_one(Experiment, experiment_id)
    spec = ExperimentSpec.model_validate(experiment.spec)
    records = _records(session, experiment_id, options.run)
    vectors = [get_snapshot(store, r.key, r.sha256).params for r in records]
    data = load_dataset(spec.dataset, data_dir, allow_download=allow_download)
    result = planes.landscape_plane(
        spec,
        data,
        vectors,
        resolution=options.resolution,
        margin=options.margin,
        normalisation=options.normalisation,
        device=device,
    )
    return {"run": options.run, "epochs": [r.epoch for r in records], **result.to_dict()}


def compute_job(
    sessions: sessionmaker[Session],
    store: ObjectStore,
    experiment_id: uuid.UUID,
    options: Options,
    **job: Any,
) -> dict[str, Any]:
    """The worker's use case: compute and cache the plane (see :func:`.jobs.run`)."""
    with sessions() as session:
        owner = session.get_one(Experiment, experiment_id).owner
    return jobs.run(
        sessions,
        store,
        options.key(experiment_id),
        lambda session: compute(session, store, experiment_id, options, **job),
        owner=owner,
        experiment_id=experiment_id,
        stored_at=options.stored_at(experiment_id),
    )

"""Response bodies of the API (requests are the core's ExperimentSpec itself)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from weightspace.adapters.db import Experiment, Run, SnapshotRecord
from weightspace.spec import ExperimentSpec

Status = Literal["queued", "running", "succeeded", "failed", "cancelled"]


class Metrics(BaseModel):
    train_loss: float
    train_accuracy: float
    test_loss: float
    test_accuracy: float


class Seeds(BaseModel):
    init: int = Field(
        description="Seed of the initial weights (of the pretrained model, for clones)."
    )
    data: int = Field(description="Seed of the data order and dropout masks.")
    pretrain: int | None = Field(
        description="Seed of the pretraining's data order, when pretrain_epochs > 0."
    )


class RunOut(BaseModel):
    run: int
    status: Status
    epoch: int | None = Field(description="Latest completed epoch.")
    final_epoch: int
    train_loss: float | None = Field(
        description="Mean minibatch loss of the latest epoch (dropout on)."
    )
    metrics: Metrics | None = Field(description="Losses and accuracies at the latest snapshot.")
    seeds: Seeds
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime

    @classmethod
    def of(cls, run: Run) -> RunOut:
        return cls(
            run=run.run,
            status=run.status,  # type: ignore[arg-type]
            epoch=run.epoch,
            final_epoch=run.final_epoch,
            train_loss=run.train_loss,
            metrics=Metrics(**run.metrics) if run.metrics else None,
            seeds=Seeds(init=run.init_seed, data=run.data_seed, pretrain=run.pretrain_seed),
            started_at=run.started_at,
            finished_at=run.finished_at,
            updated_at=run.updated_at,
        )


class ExperimentLinks(BaseModel):
    self: str
    runs: str
    pca: str
    distances: str
    trajectory: str


class ExperimentOut(BaseModel):
    id: uuid.UUID
    name: str | None
    status: Status
    queue: str
    spec: ExperimentSpec
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime
    runs: list[RunOut]
    links: ExperimentLinks

    @classmethod
    def of(cls, experiment: Experiment) -> ExperimentOut:
        base = f"/experiments/{experiment.id}"
        return cls(
            id=experiment.id,
            name=experiment.name,
            status=experiment.status,  # type: ignore[arg-type]
            queue=experiment.queue,
            spec=ExperimentSpec.model_validate(experiment.spec),
            error=experiment.error,
            created_at=experiment.created_at,
            started_at=experiment.started_at,
            finished_at=experiment.finished_at,
            updated_at=experiment.updated_at,
            runs=[RunOut.of(r) for r in experiment.runs],
            links=ExperimentLinks(
                self=base,
                runs=f"{base}/runs",
                pca=f"{base}/pca",
                distances=f"{base}/distances",
                trajectory=f"{base}/trajectory",
            ),
        )


class ExperimentPage(BaseModel):
    items: list[ExperimentOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )


class RunPage(BaseModel):
    items: list[RunOut]
    next_cursor: str | None = None


class SnapshotOut(BaseModel):
    run: int
    epoch: int
    parameters: int = Field(description="Length of the flat parameter vector.")
    size: int = Field(description="Bytes of the safetensors file.")
    sha256: str = Field(description="sha256 of the safetensors file.")
    metrics: Metrics
    created_at: datetime
    href: str

    @classmethod
    def of(cls, record: SnapshotRecord) -> SnapshotOut:
        return cls(
            run=record.run,
            epoch=record.epoch,
            parameters=record.parameters,
            size=record.size,
            sha256=record.sha256,
            metrics=Metrics(**record.metrics),
            created_at=record.created_at,
            href=f"/experiments/{record.experiment_id}/runs/{record.run}/snapshots/{record.epoch}",
        )


class SnapshotPage(BaseModel):
    items: list[SnapshotOut]
    next_cursor: str | None


class PCAPoint(BaseModel):
    run: int
    epoch: int
    coordinates: list[float]


class PCAOut(BaseModel):
    experiment_id: uuid.UUID
    complete: bool = Field(
        description="False while the experiment is still running: the answer covers what exists."
    )
    components: int
    explained_variance: list[float]
    explained_variance_ratio: list[float]
    cumulative_variance_ratio: list[float]
    points: list[PCAPoint]


class DistancesOut(BaseModel):
    experiment_id: uuid.UUID
    complete: bool
    epoch: int
    runs: list[int]
    distances: list[list[float]] = Field(
        description="Euclidean distances between the runs' snapshots at `epoch`."
    )
    cosine_similarity: list[list[float]]
    distance_from_origin: list[float]
    distance_from_init: list[float] = Field(
        description="Distance of each run's snapshot from the run's first snapshot."
    )


class TrajectoryPoint(BaseModel):
    epoch: int
    metrics: Metrics
    step_length: float
    path_length: float
    displacement: float
    distance_from_origin: float
    straightness: float


class RunTrajectory(BaseModel):
    run: int
    points: list[TrajectoryPoint]


class TrajectoryOut(BaseModel):
    experiment_id: uuid.UUID
    complete: bool
    runs: list[RunTrajectory]


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ready", "unavailable"]
    checks: dict[str, str] = Field(
        description="`ok`, or the error, per dependency: database, broker, store."
    )

"""Response bodies of experiments, their runs and their snapshots.

``ExperimentOut`` is also what a suite lists per experiment (see ``suites``).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from weightspace_app.infra.db import Experiment, Run, SnapshotRecord

from weightspace import vocabulary
from weightspace.spec import AnySpec, parse_spec
from weightspace_service.schemas.common import Metrics, Status, _warnings


class Seeds(BaseModel):
    init: int | None = Field(
        description="Seed of the initial weights (of the pretrained model, for clones); "
        "null for uploaded runs."
    )
    data: int | None = Field(description="Seed of the data order; null for uploaded runs.")
    dropout: int | None = Field(
        default=None,
        description="Seed of the dropout masks (null for runs submitted before it had its own).",
    )
    pretrain: int | None = Field(
        description="Seed of the pretraining's data order, when pretrain_epochs > 0."
    )
    pretrain_dropout: int | None = Field(
        default=None, description="Seed of the pretraining's dropout masks."
    )


class RunOut(BaseModel):
    run: int
    status: Status = Field(description="The run's own progress.")
    epoch: int | None = Field(description="Latest completed (or uploaded) epoch.")
    final_epoch: int | None = Field(
        description="The run's last epoch; for uploaded runs, null until the experiment is completed."
    )
    train_loss: float | None = Field(
        description="Mean minibatch loss of the latest epoch (dropout on)."
    )
    metrics: Metrics | None = Field(description="Losses and accuracies at the latest snapshot.")
    seeds: Seeds = Field(description="The seeds the run was derived with (from the spec's `seed`).")
    environment: dict[str, str] | None = Field(
        default=None,
        description="What the latest snapshot was computed with: torch version, device, CPU "
        "instruction set, thread count, determinism settings.",
    )
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime

    @classmethod
    def of(cls, run: Run) -> RunOut:
        return cls(
            run=run.run,
            status=run.status,
            epoch=run.epoch,
            final_epoch=run.final_epoch,
            train_loss=run.train_loss,
            metrics=Metrics(**run.metrics) if run.metrics else None,
            seeds=Seeds(
                init=run.init_seed,
                data=run.data_seed,
                dropout=run.dropout_seed,
                pretrain=run.pretrain_seed,
                pretrain_dropout=run.pretrain_dropout_seed,
            ),
            environment=run.environment,
            started_at=run.started_at,
            finished_at=run.finished_at,
            updated_at=run.updated_at,
        )


class ExperimentLinks(BaseModel):
    self: str = Field(description="This experiment.")
    runs: str = Field(description="Its runs and their progress.")
    pca: str = Field(description="PCA of its snapshots.")
    distances: str = Field(description="Distances between its runs at one epoch.")
    trajectory: str = Field(description="Per run and snapshot: step lengths, path, straightness.")
    suite: str | None = Field(
        default=None, description="The suite this experiment belongs to, if any."
    )
    report: str | None = Field(default=None, description="The suite's report (once built).")


class DamagedSnapshotOut(BaseModel):
    run: int
    epoch: int
    reason: str = Field(description="Why it cannot be used: missing object, checksum mismatch.")


class ExperimentOut(BaseModel):
    id: uuid.UUID = Field(description="The experiment's id.")
    name: str | None = Field(description="The spec's `name`, if it gave one.")
    status: Status = Field(
        description="`queued`, `running`, then `succeeded`, `failed` or "
        "`cancelled`; the last three are final (until a retry)."
    )
    queue: str = Field(description="Worker queue (`upload` for uploaded experiments).")
    source: vocabulary.Source = Field(
        default="train",
        description="`train`: the service trains it from `spec`; `upload`: its snapshots are uploaded.",
    )
    spec: AnySpec = Field(description="The spec as validated, defaults filled in.")
    error: str | None = Field(
        description="Why it failed or was cancelled (null otherwise): the server's cause."
    )
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime
    runs: list[RunOut] = Field(description="Its runs (replicas), in run order.")
    suite_id: uuid.UUID | None = Field(default=None, description="The suite it belongs to, if any.")
    role: str | None = Field(
        default=None, description="Its role in the suite (a preset experiment)."
    )
    links: ExperimentLinks = Field(description="Where its resources are.")
    damaged_snapshots: list[DamagedSnapshotOut] = Field(
        default_factory=list,
        description="Snapshots found missing or corrupt (analyses that need them answer 409).",
    )
    warnings: list[str] = _warnings()
    tags: list[str] = Field(default_factory=list, description="Its tags, sorted (`PATCH`).")
    note: str | None = Field(default=None, description="Its note (`PATCH`).")

    @classmethod
    def of(
        cls, experiment: Experiment, damaged: list[DamagedSnapshotOut] | None = None
    ) -> ExperimentOut:
        base = f"/experiments/{experiment.id}"
        return cls(
            id=experiment.id,
            name=experiment.name,
            status=experiment.status,
            queue=experiment.queue,
            source=experiment.source,
            spec=parse_spec(experiment.spec),
            error=experiment.error,
            created_at=experiment.created_at,
            started_at=experiment.started_at,
            finished_at=experiment.finished_at,
            updated_at=experiment.updated_at,
            runs=[RunOut.of(r) for r in experiment.runs],
            damaged_snapshots=damaged or [],
            suite_id=experiment.suite_id,
            role=experiment.role,
            tags=experiment.tags,
            note=experiment.note,
            links=ExperimentLinks(
                self=base,
                runs=f"{base}/runs",
                pca=f"{base}/pca",
                distances=f"{base}/distances",
                trajectory=f"{base}/trajectory",
                suite=f"/suites/{experiment.suite_id}" if experiment.suite_id else None,
                report=f"/suites/{experiment.suite_id}/report/index.html"
                if experiment.suite_id
                else None,
            ),
        )


#: A tag: a short plain word (letters, digits, ``_ . : -``), as ``list --tag`` takes it.
TAG_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
Tag = Annotated[str, StringConstraints(pattern=TAG_PATTERN)]
MAX_TAGS = 32


class ExperimentPatch(BaseModel):
    """What `PATCH /experiments/{id}` may change; a field left out stays as it is."""

    model_config = ConfigDict(extra="forbid")

    tags: list[Tag] | None = Field(
        default=None,
        max_length=MAX_TAGS,
        description="Its tags, replacing the ones it has (`[]` removes all); repeats count once.",
    )
    note: str | None = Field(
        default=None,
        max_length=10_000,
        description="Its note (`null` or an empty string removes it).",
    )


PATCH_EXAMPLES = {
    "tags": {
        "summary": "Tag an experiment and note why it was run",
        "value": {"tags": ["baseline", "lr-0.1"], "note": "the control for the wide MLP"},
    },
    "untag": {"summary": "Remove every tag, keep the note", "value": {"tags": []}},
}


class ExperimentPage(BaseModel):
    items: list[ExperimentOut] = Field(description="This page's experiments, newest first.")
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )


class RunPage(BaseModel):
    items: list[RunOut] = Field(description="This page's runs, in run order.")
    next_cursor: str | None = None


class SnapshotOut(BaseModel):
    run: int
    epoch: int
    parameters: int = Field(description="Length of the flat parameter vector.")
    size: int = Field(description="Bytes of the safetensors file.")
    sha256: str = Field(description="sha256 of the safetensors file.")
    metrics: Metrics = Field(description="Losses and accuracies at this snapshot.")
    created_at: datetime
    href: str = Field(description="Where to download the safetensors file.")
    damaged: str | None = Field(
        default=None, description="Why the stored file cannot be used, if a reader found out."
    )

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
            damaged=record.damaged,
        )


class SnapshotPage(BaseModel):
    items: list[SnapshotOut] = Field(description="This page's snapshots, in epoch order.")
    next_cursor: str | None

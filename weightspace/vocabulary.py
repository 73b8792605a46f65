"""The service's fixed vocabularies, one source for each: statuses, queues, data sets, presets.

Each is a ``Literal`` type (so pydantic schemas and the OpenAPI document list the values inline)
with its values as a tuple derived from it. The database, the API schemas, the routes, the
presets and the trainer import them from here; the light client, which must not import the core,
keeps its own copies and a test checks them against the OpenAPI document.
"""

from __future__ import annotations

from typing import Literal, get_args

#: An experiment's (and a run's) life: queued -> running -> one of the terminal states.
Status = Literal["queued", "running", "succeeded", "failed", "cancelled"]
STATUSES: tuple[Status, ...] = get_args(Status)
TERMINAL: frozenset[Status] = frozenset({"succeeded", "failed", "cancelled"})
#: Queued or running: not ended yet.
ACTIVE: frozenset[Status] = frozenset(STATUSES) - TERMINAL

#: A suite's report job.
ReportStatus = Literal["pending", "building", "ready", "failed"]
REPORT_STATUSES: tuple[ReportStatus, ...] = get_args(ReportStatus)
REPORT_TERMINAL: frozenset[ReportStatus] = frozenset({"ready", "failed"})

#: A cached worker job (``cached_jobs``): queued -> ready or failed; a job sharded over workers
#: is ``joining`` while one task sums its shards.
JobStatus = Literal["queued", "joining", "ready", "failed"]
JOB_STATUSES: tuple[JobStatus, ...] = get_args(JobStatus)

#: Worker queues: ``gpu`` workers use CUDA when they have it; ``cpu`` tasks never touch it.
Queue = Literal["gpu", "cpu"]
QUEUES: tuple[Queue, ...] = get_args(Queue)

#: Where an experiment's snapshots come from: the service trains it, or they are uploaded.
Source = Literal["train", "upload"]
SOURCES: tuple[Source, ...] = get_args(Source)

#: Data sets the trainer can load (``weightspace.data`` says where each comes from).
DatasetName = Literal["mnist", "fashion-mnist", "digits"]
DATASET_NAMES: tuple[DatasetName, ...] = get_args(DatasetName)

#: Presets shipped as ``weightspace/presets/<name>.json`` (a test checks the files match).
PresetName = Literal["quick", "paper"]
PRESET_NAMES: tuple[PresetName, ...] = get_args(PresetName)

#: The paper's experiments, as every preset defines them. Experiment 3 comes twice: with the
#: runs' dropout masks shared (the shuffle order alone varies) and, as 3b, with each run's own
#: masks as well (order and masks vary, as in the paper's setting).
Role = Literal[
    "trajectory", "independent-inits", "shared-init", "shared-init-masks", "pretrained-clones"
]
ROLES: tuple[Role, ...] = get_args(Role)
#: How the report numbers each experiment (the paper's 1-4, and 3b).
EXPERIMENT_NUMBERS: dict[str, str] = {
    "trajectory": "1",
    "independent-inits": "2",
    "shared-init": "3",
    "shared-init-masks": "3b",
    "pretrained-clones": "4",
}

#: One experiment's figures, served as SVG at ``/experiments/{id}/figures/{name}.svg``.
FigureName = Literal["pca", "spectrum", "distances", "metrics"]
FIGURE_NAMES: tuple[FigureName, ...] = get_args(FigureName)


def describe(values: tuple[str, ...]) -> str:
    """``a``, ``b`` or ``c``: for error messages."""
    quoted = [f"`{value}`" for value in values]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"

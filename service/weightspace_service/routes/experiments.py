"""Experiments, their runs and their snapshots."""

from __future__ import annotations

import logging
import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Query, Response
from fastapi.responses import JSONResponse, StreamingResponse
from weightspace_app.infra.gram_store import DamagedSnapshot
from weightspace_app.infra.integrity import verified_chunks
from weightspace_app.usecases import analyses
from weightspace_app.usecases import experiments as usecases
from weightspace_app.usecases.submission import submit_experiment

from weightspace.exports import SpooledStateDict
from weightspace.snapshots import ChecksumError, ObjectNotFound
from weightspace.spec import AnySpec, UploadSpec
from weightspace_service.cursors import (
    after_created,
    bad_cursor,
    created_cursor,
    decode_cursor,
    encode_cursor,
)
from weightspace_service.deps import (
    AUTHENTICATED,
    PrincipalDep,
    SessionDep,
    SessionsDep,
    StoreDep,
    SubmitterDep,
)
from weightspace_service.params import INT32_MAX, Cursor, EpochPath, Limit, RunPath
from weightspace_service.problems import problem_responses
from weightspace_service.protocol import StrictJSONRoute
from weightspace_service.schemas import (
    PATCH_EXAMPLES,
    DamagedSnapshotOut,
    ExperimentOut,
    ExperimentPage,
    ExperimentPatch,
    RunOut,
    RunPage,
    SnapshotOut,
    SnapshotPage,
    Status,
)
from weightspace_service.schemas.experiments import TAG_PATTERN

router = APIRouter(
    prefix="/experiments",
    tags=["experiments"],
    route_class=StrictJSONRoute,
    dependencies=AUTHENTICATED,
    responses=problem_responses(401),
)
log = logging.getLogger(__name__)

STREAM_CHUNK = 1 << 20
SPEC_EXAMPLES = {
    "train": {
        "summary": "Train 3 replicas of an MLP on digits",
        "value": {
            "name": "digits-mlp",
            "seed": 0,
            "dataset": {"name": "digits"},
            "model": {"kind": "mlp", "hidden": [32]},
            "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9},
            "epochs": 20,
            "batch_size": 64,
            "snapshot_every": 1,
            "replicas": 3,
            "init": "independent",
        },
    },
    "upload": {
        "summary": "Receive snapshots of 2 runs from your own training loop",
        "value": {"source": "upload", "name": "my-resnet", "replicas": 2},
    },
}


@router.post(
    "",
    status_code=202,
    response_model=ExperimentOut,
    responses={
        201: {
            "model": ExperimentOut,
            "description": "An upload experiment was created",
            "headers": {
                "Location": {
                    "schema": {"type": "string"},
                    "description": "URL of the new experiment",
                }
            },
        },
        202: {
            "description": "A training experiment was queued; `warnings` says if no live "
            "worker consumes its queue yet",
            "headers": {
                "Location": {
                    "schema": {"type": "string"},
                    "description": "URL of the new experiment",
                }
            },
        },
        **problem_responses(422, 429, 503),
    },
)
def create_experiment(
    spec: Annotated[AnySpec, Body(openapi_examples=SPEC_EXAMPLES)],
    session: SessionDep,
    submitter: SubmitterDep,
) -> JSONResponse:
    """Submit an experiment: a training spec is queued for training (202); an upload spec
    (`"source": "upload"`) creates an experiment that receives snapshots (201), see
    `PUT /experiments/{id}/runs/{run}/snapshots/{epoch}`. Both answer with the URL.

    A training spec is checked against the live workers of its queue (`GET /workers`): 422
    naming `dataset.name` (or `dataset.train_size`) if none can load its data; with no live
    worker on the queue it is queued all the same, with a warning in `warnings`."""
    submitted = submit_experiment(session, submitter, spec)
    experiment, status = submitted.item, 201 if isinstance(spec, UploadSpec) else 202
    body = ExperimentOut.of(experiment)
    body.warnings = submitted.warnings
    return JSONResponse(
        body.model_dump(mode="json"), status_code=status, headers={"Location": body.links.self}
    )


@router.get("", response_model=ExperimentPage, responses=problem_responses(422))
def list_experiments(
    session: SessionDep,
    principal: PrincipalDep,
    limit: Limit = 50,
    cursor: Cursor = None,
    status: Annotated[
        Status | None, Query(description="Only experiments with this status.")
    ] = None,
    tag: Annotated[
        str | None, Query(pattern=TAG_PATTERN, description="Only experiments with this tag.")
    ] = None,
) -> ExperimentPage:
    """The caller's experiments, newest first."""
    after = after_created(cursor)
    items = usecases.list_experiments(
        session, principal, limit=limit, after=after, status=status, tag=tag
    )
    next_cursor = (
        created_cursor(items[-1].created_at, items[-1].id) if len(items) == limit else None
    )
    return ExperimentPage(items=[ExperimentOut.of(e) for e in items], next_cursor=next_cursor)


@router.get("/{experiment_id}", response_model=ExperimentOut, responses=problem_responses(404, 422))
def get_experiment(
    experiment_id: uuid.UUID, session: SessionDep, principal: PrincipalDep
) -> ExperimentOut:
    """Spec, status and per-run progress; snapshots found damaged (missing or corrupt) are
    listed in `damaged_snapshots`."""
    experiment = usecases.get_experiment(session, principal, experiment_id)
    damaged = [
        DamagedSnapshotOut(run=r.run, epoch=r.epoch, reason=r.damaged or "")
        for r in usecases.damaged_snapshots(session, experiment)
    ]
    return ExperimentOut.of(experiment, damaged)


@router.patch(
    "/{experiment_id}", response_model=ExperimentOut, responses=problem_responses(404, 422)
)
def annotate_experiment(
    experiment_id: uuid.UUID,
    body: Annotated[ExperimentPatch, Body(openapi_examples=PATCH_EXAMPLES)],
    session: SessionDep,
    principal: PrincipalDep,
) -> ExperimentOut:
    """Set the experiment's tags (replacing its own) and its note; a field left out is kept.
    Any experiment, in any state: they describe it and change nothing it computes."""
    experiment = usecases.annotate(
        session,
        principal,
        experiment_id,
        tags=body.tags,
        note=body.note,
        set_note="note" in body.model_fields_set,
    )
    return ExperimentOut.of(experiment)


@router.get("/{experiment_id}/runs", response_model=RunPage, responses=problem_responses(404, 422))
def list_runs(experiment_id: uuid.UUID, session: SessionDep, principal: PrincipalDep) -> RunPage:
    """All runs of the experiment (one page: an experiment has at most 64)."""
    experiment = usecases.get_experiment(session, principal, experiment_id)
    return RunPage(items=[RunOut.of(r) for r in experiment.runs], next_cursor=None)


@router.get(
    "/{experiment_id}/runs/{run}/snapshots",
    response_model=SnapshotPage,
    responses=problem_responses(404, 422),
)
def list_snapshots(
    experiment_id: uuid.UUID,
    run: RunPath,
    session: SessionDep,
    principal: PrincipalDep,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> SnapshotPage:
    """Snapshot metadata of one run in epoch order: epoch, metrics, size and sha256."""
    experiment = usecases.get_experiment(session, principal, experiment_id)
    after = None
    if cursor is not None:
        values = decode_cursor(cursor)
        if not (
            isinstance(values, list)
            and len(values) == 1
            and type(values[0]) is int  # not a bool
            and 0 <= values[0] <= INT32_MAX
        ):
            raise bad_cursor()
        after = values[0]
    records = usecases.list_snapshots(session, experiment, run, limit=limit, after_epoch=after)
    next_cursor = encode_cursor(records[-1].epoch) if len(records) == limit else None
    return SnapshotPage(items=[SnapshotOut.of(r) for r in records], next_cursor=next_cursor)


@router.get(
    "/{experiment_id}/runs/{run}/snapshots/{epoch}",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
            "description": "The snapshot's safetensors file",
            "headers": {
                "X-Checksum-Sha256": {
                    "schema": {"type": "string"},
                    "description": "sha256 of the file",
                }
            },
        },
        **problem_responses(404, 422),
    },
)
def download_snapshot(
    experiment_id: uuid.UUID,
    run: RunPath,
    epoch: EpochPath,
    session: SessionDep,
    principal: PrincipalDep,
    store: StoreDep,
    sessions: SessionsDep,
    format: Annotated[
        Literal["snapshot", "state_dict"],
        Query(
            description="`snapshot`: the stored file (one flat `params` tensor, metadata in its "
            "header); `state_dict`: a plain safetensors state dict for `load_state_dict`."
        ),
    ] = "snapshot",
) -> Response:
    """Stream the safetensors file of one snapshot, or the snapshot as a state dict."""
    experiment = usecases.get_experiment(session, principal, experiment_id)
    record = usecases.get_snapshot_record(session, experiment, run, epoch)
    name = f"{experiment.id}-run{run}-epoch{epoch}"
    ref = analyses.ref_of(record)

    def damaged(why: str) -> None:
        analyses.mark_damaged(sessions, experiment.id, ref, why)

    try:
        chunks = verified_chunks(
            store, record.key, record.size, record.sha256, STREAM_CHUNK, on_damage=damaged
        )
    except (ObjectNotFound, ChecksumError) as error:
        why = (
            "its object is missing from the store"
            if isinstance(error, ObjectNotFound)
            else str(error)
        )
        raise DamagedSnapshot(ref, why) from None
    if format == "state_dict":  # verified as it is spooled, then rebuilt as a state dict
        spooled = SpooledStateDict(chunks)
        return StreamingResponse(
            spooled.chunks(STREAM_CHUNK),
            media_type="application/octet-stream",
            headers={
                "Content-Length": str(spooled.plan.size),
                "X-Checksum-Sha256": spooled.sha256,
                "Content-Disposition": f'attachment; filename="{name}-state_dict.safetensors"',
            },
        )
    return StreamingResponse(
        chunks,
        media_type="application/octet-stream",
        headers={
            "Content-Length": str(record.size),
            "X-Checksum-Sha256": record.sha256,
            "ETag": f'"{record.sha256}"',
            "Content-Disposition": f'attachment; filename="{name}.safetensors"',
        },
    )

"""Uploaded experiments: receive snapshots from any training loop, then complete the experiment."""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect
from weightspace_app.usecases import uploads

from weightspace.imports import InvalidUpload
from weightspace_service.deps import (
    AUTHENTICATED,
    PrincipalDep,
    SessionDep,
    SettingsDep,
    StoreDep,
)
from weightspace_service.params import EpochPath, RunPath
from weightspace_service.problems import problem_responses
from weightspace_service.protocol import StrictJSONRoute
from weightspace_service.schemas import ExperimentOut, SnapshotOut

router = APIRouter(
    prefix="/experiments",
    tags=["uploads"],
    route_class=StrictJSONRoute,
    dependencies=AUTHENTICATED,
    responses=problem_responses(401),
)

#: Where snapshots are uploaded (the app lets these bodies grow to ``max_upload_bytes``).
UPLOAD_PATH = re.compile(r"/experiments/[^/]+/runs/[^/]+/snapshots/[^/]+")
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
_DIGEST_SHA256 = re.compile(r"(?:^|,)\s*sha-256=:([A-Za-z0-9+/=]+):", re.IGNORECASE)
SAFETENSORS_BODY = {
    "requestBody": {
        "required": True,
        "description": "A safetensors file of the state dict (any tensor names, shapes and dtypes).",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


def _digest_hex(content_digest: str) -> str | None:
    """The sha-256 of an RFC 9530 ``Content-Digest`` header, as hex (None if it has none)."""
    match = _DIGEST_SHA256.search(content_digest)
    if match is None:
        return None
    try:
        raw = base64.b64decode(match.group(1), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise InvalidUpload("header.content-digest", "sha-256 must be 32 bytes in base64")
    return raw.hex()


def _expected_sha256(x_checksum: str | None, content_digest: str | None) -> str | None:
    hexes = []
    if x_checksum is not None:
        if not _HEX64.match(x_checksum.strip()):
            raise InvalidUpload("header.x-checksum-sha256", "must be 64 hex digits")
        hexes.append(x_checksum.strip().lower())
    if content_digest is not None and (digest := _digest_hex(content_digest)) is not None:
        hexes.append(digest)
    if len(set(hexes)) > 1:
        raise InvalidUpload("header.content-digest", "disagrees with X-Checksum-Sha256")
    return hexes[0] if hexes else None


def _metrics(x_metrics: str | None) -> dict[str, float]:
    if x_metrics is None:
        return {}
    try:
        value = json.loads(x_metrics)
    except (ValueError, RecursionError):  # RecursionError: nested too deep
        raise InvalidUpload("header.x-metrics", "not valid JSON") from None
    return uploads.check_metrics(value)


@router.put(
    "/{experiment_id}/runs/{run}/snapshots/{epoch}",
    status_code=201,
    response_model=SnapshotOut,
    openapi_extra=SAFETENSORS_BODY,
    responses={
        200: {"model": SnapshotOut, "description": "The snapshot replaced an earlier upload"},
        **problem_responses(404, 409, 413, 422, 429),
    },
)
async def upload_snapshot(
    experiment_id: uuid.UUID,
    run: RunPath,
    epoch: EpochPath,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    store: StoreDep,
    settings: SettingsDep,
    x_checksum_sha256: Annotated[
        str | None, Header(description="Hex sha256 of the body; verified when given.")
    ] = None,
    content_digest: Annotated[
        str | None,
        Header(description="RFC 9530 digest, e.g. `sha-256=:<base64>:`; verified when given."),
    ] = None,
    x_metrics: Annotated[
        str | None,
        Header(
            max_length=8192,
            description='JSON object of metrics at this snapshot, e.g. `{"train_loss": 0.3}`.',
        ),
    ] = None,
) -> JSONResponse:
    """Upload one snapshot of an uploaded experiment: a state dict as a safetensors file.

    Its floating-point tensors, in sorted order of their names and each flattened row-major,
    form the parameter vector (float64 if any tensor is float64, else float32); other tensors
    (integer counters, masks) are kept beside it. Every snapshot of an experiment must have the
    same layout (names, shapes, dtypes), else 422. Uploading the same run and epoch again
    replaces the snapshot (200) until the experiment is completed. Uploaded bytes count
    against the owner's `WEIGHTSPACE_MAX_STORED_BYTES` (429 past it).
    """
    expected = _expected_sha256(x_checksum_sha256, content_digest)
    metrics = _metrics(x_metrics)
    await run_in_threadpool(uploads.check_target, session, principal, experiment_id, run, epoch)
    # Streamed, never read whole (the app's body limit for this route: max_upload_bytes).
    try:
        async with uploads.receive(request.stream(), settings.upload_chunk_bytes) as body:
            record, created = await run_in_threadpool(
                uploads.put,
                session,
                store,
                principal,
                experiment_id,
                run,
                epoch,
                body,
                metrics=metrics,
                sha256=expected,
                settings=settings,
            )
    except ClientDisconnect:  # gone half-way: nothing was stored, and nobody reads an answer
        return JSONResponse(None, status_code=400)
    out = SnapshotOut.of(record)
    return JSONResponse(
        out.model_dump(mode="json"),
        status_code=201 if created else 200,
        headers={"Location": out.href},
    )


@router.post(
    "/{experiment_id}/complete",
    response_model=ExperimentOut,
    responses=problem_responses(404, 409, 422),
)
def complete_experiment(
    experiment_id: uuid.UUID, session: SessionDep, principal: PrincipalDep
) -> ExperimentOut:
    """Close an uploaded experiment (status `succeeded`); every run needs a snapshot first."""
    return ExperimentOut.of(uploads.complete(session, principal, experiment_id))

"""Use cases of uploaded experiments: create one, receive its snapshots, complete it.

The flattening of a state dict into a snapshot is core code (:mod:`weightspace.imports`); here
are the checks against the experiment (run range, one layout for every snapshot, no uploads
after completion) and the writes to the store and the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import math
import re
import tempfile
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Iterator, Mapping

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from weightspace import layouts
from weightspace.data import DATASETS
from weightspace.imports import (
    CHUNK_BYTES,
    InvalidUpload,
    Layout,
    Prepared,
    Received,
    Receiver,
    prepare,
)
from weightspace.models import declared_layout
from weightspace.snapshots import ObjectStore, snapshot_key
from weightspace.spec import UploadSpec
from weightspace.vocabulary import TERMINAL
from weightspace_app.access import Conflict, Principal
from weightspace_app.infra.db import Experiment, Run, SnapshotRecord, utcnow
from weightspace_app.infra.settings import Settings
from weightspace_app.usecases import limits
from weightspace_app.usecases.experiments import get_experiment, get_locked

#: Upper bound of an epoch number (the database column is a 32-bit integer).
MAX_EPOCH = 1_000_000_000
MAX_METRICS = 64
_METRIC_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")


def new_experiment(principal: Principal, spec: UploadSpec, queue: str) -> Experiment:
    """An experiment that receives uploads (status ``running`` until completed), with its runs;
    not yet added to a session (the caller inserts it, once per Idempotency-Key). An upload
    that declares a model evaluates it (planes, barriers) on ``queue``; others have none."""
    now = utcnow()
    experiment = Experiment(
        id=uuid.uuid4(),
        owner=principal.id,
        name=spec.name,
        spec=spec.model_dump(mode="json"),
        queue="upload" if spec.model is None else queue,
        source="upload",
        status="running",
        created_at=now,
        started_at=now,
    )
    experiment.runs = [
        Run(run=r, init_seed=None, data_seed=None, final_epoch=None, status="running")
        for r in range(spec.replicas)
    ]
    return experiment


def _uploadable(
    session: Session, principal: Principal, experiment_id: uuid.UUID, *, lock: bool = False
) -> Experiment:
    """The experiment if it takes uploads; with ``lock``, its row locked until the commit, so
    that an upload and ``complete`` are serialised: a snapshot is in before completion, or
    refused (409) after it."""
    if lock:
        experiment = get_locked(session, principal, Experiment, experiment_id)
    else:
        experiment = get_experiment(session, principal, experiment_id)
    if experiment.source != "upload":
        raise Conflict("this experiment is trained by the service; it takes no uploads")
    if experiment.status in TERMINAL:
        raise Conflict(f"the experiment is {experiment.status}; it takes no more uploads")
    return experiment


def check_metrics(metrics: object) -> dict[str, float]:
    """Metrics as a JSON object of finite numbers under plain names, else InvalidUpload."""
    field = "header.x-metrics"
    if not isinstance(metrics, dict):
        raise InvalidUpload(field, "metrics must be a JSON object of numbers")
    if len(metrics) > MAX_METRICS:
        raise InvalidUpload(field, f"at most {MAX_METRICS} metrics")
    out = {}
    for name, value in metrics.items():
        if not _METRIC_NAME.match(str(name)):
            raise InvalidUpload(field, f"metric name {name!r} is not a plain name")
        number = _finite(value)
        if number is None:
            raise InvalidUpload(field, f"metric {name!r} must be a finite number")
        out[str(name)] = number
    return out


def _finite(value: object) -> float | None:
    """``value`` as a finite float, or None (booleans, strings, NaN, integers past float64)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _check_declared_model(spec: UploadSpec, layout: Layout) -> None:
    """422 naming the first tensor in which the state dict differs from the declared model."""
    if spec.model is None or spec.dataset is None:
        return
    declared = declared_layout(spec.model, DATASETS[spec.dataset.name].input_shape)
    if (why := layouts.difference(declared, [(n, s) for n, s, _ in layout.vector])) is not None:
        raise InvalidUpload(
            "body",
            f"the state dict is not the declared model ({spec.model.kind} on "
            f"{spec.dataset.name}): {why}",
        )


def _fix_layout(experiment: Experiment, layout: Layout) -> None:
    """Record ``layout`` as the experiment's (row locked) if it has none yet; 422 unless it
    matches."""
    digest = layout.sha256()
    if experiment.layout_sha256 is None:
        experiment.layout, experiment.layout_sha256 = layout.to_json(), digest
    elif experiment.layout_sha256 != digest:
        expected = Layout.from_json(experiment.layout or {"vector": []})
        raise InvalidUpload(
            "body",
            "the state dict's layout differs from this experiment's: "
            + (expected.difference(layout) or "different tensor order"),
        )


def _target(
    session: Session, principal: Principal, experiment_id: uuid.UUID, run: int, epoch: int
) -> Experiment:
    """The experiment, if it takes an upload of (run, epoch); 404, 409 or 422 otherwise."""
    experiment = _uploadable(session, principal, experiment_id)
    if not 0 <= run < len(experiment.runs):
        raise InvalidUpload(
            "path.run", f"run {run} does not exist (runs 0..{len(experiment.runs) - 1})"
        )
    if not 0 <= epoch <= MAX_EPOCH:
        raise InvalidUpload("path.epoch", f"epoch must be in [0, {MAX_EPOCH}]")
    return experiment


def check_target(
    session: Session, principal: Principal, experiment_id: uuid.UUID, run: int, epoch: int
) -> None:
    """Refuse an upload (404, 409, 422) before its body is read; the transaction ends, so that
    no connection is held while the body streams in."""
    try:
        _target(session, principal, experiment_id, run, epoch)
    finally:
        session.rollback()


@contextlib.asynccontextmanager
async def receive(stream: AsyncIterable[bytes], chunk_bytes: int) -> AsyncIterator[Received]:
    """A request body taken as it streams in, ``chunk_bytes`` at a time (checked, hashed, its
    data section spooled to a temporary file, removed after the block): the memory it holds
    is about two chunks and the safetensors header, whatever the body's size."""
    with tempfile.TemporaryFile(prefix="weightspace-upload-") as spool:
        receiver = Receiver(spool)
        pending = bytearray()
        async for piece in stream:
            pending += piece
            if len(pending) >= chunk_bytes:
                await asyncio.to_thread(receiver.write, pending)
                pending = bytearray()
        await asyncio.to_thread(receiver.write, pending)
        yield await asyncio.to_thread(receiver.finish)


def _received(body: bytes) -> Received:
    receiver = Receiver(io.BytesIO())
    receiver.write(body)
    return receiver.finish()


def put(
    session: Session,
    store: ObjectStore,
    principal: Principal,
    experiment_id: uuid.UUID,
    run: int,
    epoch: int,
    body: bytes | Received,
    *,
    metrics: Mapping[str, float],
    sha256: str | None,
    settings: Settings | None = None,
) -> tuple[SnapshotRecord, bool]:
    """Store the state dict ``body`` as snapshot (run, epoch); return it and whether it is new.

    ``body`` is the safetensors file, or what :func:`receive` took of it. ``sha256`` (hex),
    when given, must match the body. Uploading the same (run, epoch) again replaces the
    snapshot while the experiment is open. With ``settings``, the owner's stored-bytes quota
    applies (429). Every check passes before anything is written; the snapshot file streams to
    the store a chunk at a time. The experiment's row is locked from the last check to the
    commit (see :func:`_uploadable`).
    """
    experiment = _target(session, principal, experiment_id, run, epoch)
    received = _received(body) if isinstance(body, bytes) else body
    if sha256 is not None and received.sha256 != sha256.lower():
        raise InvalidUpload("header.x-checksum-sha256", "the body does not match its sha256")
    spec = UploadSpec.model_validate(experiment.spec)
    chunk_bytes = CHUNK_BYTES if settings is None else settings.upload_chunk_bytes
    prepared = prepare(
        received,
        experiment_id=experiment.id,
        run=run,
        epoch=epoch,
        metrics=metrics,
        include_buffers=spec.include == "parameters+buffers",
        chunk_bytes=chunk_bytes,
    )
    _check_declared_model(spec, prepared.layout)
    try:
        experiment = _uploadable(session, principal, experiment_id, lock=True)
        _fix_layout(experiment, prepared.layout)
        existing = session.get(SnapshotRecord, (experiment.id, run, epoch))
        if settings is not None:
            replaced = 0 if existing is None else existing.size
            limits.admit_upload(session, principal, settings, prepared.size - replaced)
    except Exception:
        session.rollback()
        raise
    key = snapshot_key(experiment.id, run, epoch)
    digest = hashlib.sha256()
    size = store.put_stream(key, _hashed(prepared, chunk_bytes, digest))
    record = SnapshotRecord(
        experiment_id=experiment.id,
        run=run,
        epoch=epoch,
        key=key,
        size=size,
        sha256=digest.hexdigest(),
        parameters=prepared.parameters,
        metrics=dict(metrics),
        created_at=utcnow(),
    )
    record = session.merge(record)
    row = session.get_one(Run, (experiment.id, run))
    if row.epoch is None or epoch >= row.epoch:
        row.epoch, row.metrics = epoch, dict(metrics) or None
        row.train_loss = metrics.get("train_loss")  # the latest loss, as training records it
    session.commit()
    return record, existing is None


def _hashed(prepared: Prepared, chunk_bytes: int, digest: hashlib._Hash) -> Iterator[bytes]:
    """The snapshot file's chunks, each added to ``digest`` on its way to the store."""
    for chunk in prepared.chunks(chunk_bytes):
        digest.update(chunk)
        yield chunk


def complete(session: Session, principal: Principal, experiment_id: uuid.UUID) -> Experiment:
    """Close an uploaded experiment: every run must have a snapshot; no uploads after this
    (its row locked, as an upload locks it)."""
    experiment = _uploadable(session, principal, experiment_id, lock=True)
    latest = dict(
        session.execute(
            select(SnapshotRecord.run, func.max(SnapshotRecord.epoch))
            .where(SnapshotRecord.experiment_id == experiment.id)
            .group_by(SnapshotRecord.run)
        ).all()
    )
    if missing := [r.run for r in experiment.runs if r.run not in latest]:
        raise Conflict(f"runs {missing} have no snapshot yet; upload at least one each")
    now = utcnow()
    for run in experiment.runs:
        run.status, run.final_epoch, run.finished_at = "succeeded", latest[run.run], now
    experiment.status, experiment.finished_at = "succeeded", now
    session.commit()
    return experiment

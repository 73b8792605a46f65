"""Gram matrices computed by workers, sharded over parameters: analyses past one process.

An analysis whose healthy snapshots weigh more than ``inline_analysis_max_bytes`` and whose
Gram is not cached yet is not computed in the API. Instead:

1. :func:`offload` (API) names the job, ``gram/<gram id>/<fingerprint>``; :func:`request` queues
   it once (a ``cached_jobs`` row) and the API enqueues the plan task and answers 202. A job
   not advanced for ``requeue_after`` seconds (its tasks lost with a worker and a broker that
   does not redeliver them) is planned again by the next request.
2. :func:`plan` (worker) splits the parameters into contiguous shards and enqueues one task per
   shard not done yet.
3. :func:`compute_shard` (worker) computes the shard's partial float64 Gram from byte ranges of
   the snapshots (:func:`.gram_store.gram_of` with ``shard``; cached in the store, so a
   redelivered task rewrites the same object and an added snapshot costs only its new rows),
   then records the shard as done: one row per shard range, inserted once.
4. When every shard is recorded, :func:`join` claims the job (``queued`` to ``joining``, one
   claimant), sums the partials in shard order (each range once, whatever arrived when or how
   often), caches the sum as the experiment's Gram and marks the job ``ready``. The API then
   answers from that cache, exactly as for a Gram it computed itself.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from weightspace import analysis, sharding
from weightspace.snapshots import ObjectStore, StoredVector, experiment_prefix
from weightspace_app.access import Conflict, Principal
from weightspace_app.infra import gram_store
from weightspace_app.infra.db import CachedJob, SnapshotRecord, utcnow
from weightspace_app.infra.gram_store import Cached, DamagedSnapshot, SnapshotRef, fingerprint
from weightspace_app.usecases import analyses, jobs, joint

log = logging.getLogger(__name__)

#: Acts for the worker, which re-reads an experiment by id whoever owns it.
WORKER = Principal("worker", admin=True)

Shard = tuple[int, int]


def subject_of(kind: str, ident: uuid.UUID) -> str:
    """What a job computes the Gram of: ``experiment:<id>`` or ``analysis:<id>`` (joint)."""
    return f"{kind}:{ident}"


def inputs_of(sessions: sessionmaker[Session], store: ObjectStore, subject: str) -> analyses.Inputs:
    """The inputs of ``subject`` as they are now (re-read by every task)."""
    kind, _, ident = subject.partition(":")
    if kind == "analysis":
        owner, request = joint.load_stored_request(store, uuid.UUID(ident))
        return joint.resolve(sessions, store, Principal(owner), request).inputs
    return analyses.load_inputs(sessions, WORKER, uuid.UUID(ident))


def _healthy(inputs: analyses.Inputs) -> list[SnapshotRef]:
    return sorted(inputs.healthy, key=lambda r: (r.run, r.epoch))


def job_key(inputs: analyses.Inputs) -> str:
    return f"gram/{inputs.experiment_id.hex}/{fingerprint(_healthy(inputs))}"


def _shard_key(key: str, shard: Shard) -> str:
    return f"{key}/shard-{shard[0]}-{shard[1]}"


# --------------------------------------------------------------------------- the API's side


def offload(
    session: Session, store: ObjectStore, inputs: analyses.Inputs, limit: int
) -> str | None:
    """The job key if workers must compute the Gram of ``inputs``' healthy snapshots: they
    weigh more than ``limit`` bytes and their Gram is not cached. None: compute it here."""
    healthy = _healthy(inputs)
    if not healthy:
        return None
    weight = session.scalar(
        select(func.sum(SnapshotRecord.size)).where(
            SnapshotRecord.key.in_([r.key for r in healthy])
        )
    )
    if int(weight or 0) <= limit:
        return None
    cached = gram_store.load_latest(store, inputs.experiment_id)
    if cached is not None and cached.fingerprint == fingerprint(healthy):
        return None
    return job_key(inputs)


def request(
    session: Session,
    key: str,
    owner: str,
    experiment_id: uuid.UUID | None,
    stale_after: float,
) -> bool:
    """Whether the caller must enqueue the plan task: the job is new, or it has not advanced
    for ``stale_after`` seconds, or it is ready but its Gram is gone from the store. Of
    concurrent callers one gets True. Conflict (409) if the job failed."""
    job = session.get(CachedJob, key)
    if job is None:
        return jobs.request(session, key, owner, experiment_id)
    if job.status == "failed":
        raise Conflict(f"the computation failed: {job.error}")
    stale = job.updated_at < utcnow() - timedelta(seconds=stale_after)
    if job.status != "ready" and not stale:
        return False
    result = session.execute(
        update(CachedJob)
        .where(CachedJob.key == key, CachedJob.updated_at == job.updated_at)
        .values(status="queued", updated_at=utcnow())
    )
    session.commit()
    return bool(result.rowcount)  # type: ignore[attr-defined]


def undo(session: Session, key: str) -> None:
    """The plan task could not be enqueued: forget the request (done shards stay done)."""
    jobs.undo(session, key)


# --------------------------------------------------------------------------- the workers' side


def _parameters(store: ObjectStore, refs: Sequence[SnapshotRef]) -> int:
    return StoredVector(store, refs[0].key).size


def _done(session: Session, key: str) -> set[str]:
    rows = session.scalars(select(CachedJob.key).where(CachedJob.key.startswith(f"{key}/")))
    return set(rows)


def _mark(session: Session, key: str, status: str, error: str | None = None) -> None:
    session.execute(
        update(CachedJob)
        .where(CachedJob.key == key, CachedJob.status != "ready")
        .values(status=status, error=error)
    )
    session.commit()


def _current(
    sessions: sessionmaker[Session], store: ObjectStore, subject: str, key: str
) -> analyses.Inputs | None:
    """``subject``'s inputs if they are still those of job ``key``; else the job is marked
    failed (its snapshots changed while it was queued: the next request names a new job)."""
    inputs = inputs_of(sessions, store, subject)
    if job_key(inputs) == key:
        return inputs
    fail(sessions, key, "the snapshots changed while it was computed; ask again")
    return None


def plan(
    sessions: sessionmaker[Session],
    store: ObjectStore,
    subject: str,
    key: str,
    per_shard: int,
    enqueue: Callable[[Shard, int], None],
) -> int:
    """Enqueue (``enqueue(shard, parameters)``) every shard of job ``key`` not done yet and
    return how many; join at once if none is missing."""
    if (inputs := _current(sessions, store, subject, key)) is None:
        return 0
    healthy = _healthy(inputs)
    size = _parameters(store, healthy)
    shards = sharding.split(size, per_shard)
    with sessions() as session:
        done = _done(session, key)
        missing = []
        for shard in shards:
            if _shard_key(key, shard) in done:
                if _partial(store, inputs, shard, healthy) is not None:
                    continue
                jobs.undo(session, _shard_key(key, shard))  # done, but its partial is gone
            missing.append(shard)
    for shard in missing:
        enqueue(shard, size)
    if not missing:
        join(sessions, store, inputs, key, shards)
    return len(missing)


def compute_shard(
    sessions: sessionmaker[Session],
    store: ObjectStore,
    subject: str,
    key: str,
    shard: Shard,
    size: int,
    per_shard: int,
    delay: float = 0.0,
) -> bool:
    """Compute (or find cached) the partial Gram of ``shard``, record it as done, and join if
    it was the last; whether this call joined."""
    time.sleep(delay)  # tests make a shard slow this way (Settings.gram_shard_delay)
    if (inputs := _current(sessions, store, subject, key)) is None:
        return False
    healthy = _healthy(inputs)
    try:
        gram_store.gram_of(store, inputs.experiment_id, healthy, shard=shard)
    except DamagedSnapshot as damage:
        _failed(sessions, inputs, key, damage)
        return False
    with sessions() as session:
        experiment = None if inputs.members else inputs.experiment_id  # deleted with it
        jobs.request(session, _shard_key(key, shard), "worker", experiment)  # once per range
        _mark(session, _shard_key(key, shard), "ready")
        session.execute(  # progress: not stale while shards keep arriving
            update(CachedJob).where(CachedJob.key == key).values(updated_at=utcnow())
        )
        session.commit()
        done = _done(session, key)
    shards = sharding.split(size, per_shard)
    if all(_shard_key(key, s) in done for s in shards):
        return join(sessions, store, inputs, key, shards)
    return False


def fail(sessions: sessionmaker[Session], key: str, why: str) -> None:
    """Mark job ``key`` failed (unless it is ready): the request answers 409 with ``why``."""
    with sessions() as session:
        _mark(session, key, "failed", why[:2000])


def _failed(
    sessions: sessionmaker[Session], inputs: analyses.Inputs, key: str, damage: DamagedSnapshot
) -> None:
    """A damaged snapshot fails the job; one of an experiment is recorded (the next request
    leaves it out, as an inline analysis does)."""
    if not inputs.members:
        analyses.mark_damaged(sessions, inputs.experiment_id, damage.ref, damage.reason)
    fail(sessions, key, str(damage))


def _partial(
    store: ObjectStore, inputs: analyses.Inputs, shard: Shard, healthy: Sequence[SnapshotRef]
) -> analysis.Gram | None:
    """The cached partial Gram of ``shard``, rows in the order of ``healthy``; None if the
    store has none for exactly these snapshots."""
    cached = gram_store.load_latest(store, inputs.experiment_id, shard)
    entries = [r.entry for r in healthy]
    if cached is None or set(cached.entries) != set(entries):
        return None
    order = [cached.entries.index(e) for e in entries]
    return cached.gram if order == list(range(len(order))) else cached.gram.subset(order)


def join(
    sessions: sessionmaker[Session],
    store: ObjectStore,
    inputs: analyses.Inputs,
    key: str,
    shards: Sequence[Shard],
) -> bool:
    """Sum the shards' partial Grams (in shard order, each once), cache the sum as the Gram of
    ``inputs`` and mark the job ready; False if another task holds or finished the job."""
    with sessions() as session:
        claimed = session.execute(
            update(CachedJob)
            .where(CachedJob.key == key, CachedJob.status == "queued")
            .values(status="joining")
        )
        session.commit()
        if not claimed.rowcount:  # type: ignore[attr-defined]
            return False
    healthy = _healthy(inputs)
    partials = []
    for shard in shards:
        if (partial := _partial(store, inputs, shard, healthy)) is None:
            with sessions() as session:  # its partial is gone: computed again when re-planned
                jobs.undo(session, _shard_key(key, shard))
                _mark(session, key, "queued")
            log.warning("partial Gram of %s shard %s is missing; the job will re-plan", key, shard)
            return False
        partials.append(partial)
    entries = [r.entry for r in healthy]
    result = Cached(entries, sharding.combine(partials), fingerprint(healthy))
    if (index := result.gram.first_unanalysable()) is not None:
        damage = DamagedSnapshot(
            healthy[index], "its values are too large to analyse (their squares overflow float64)"
        )
        _failed(sessions, inputs, key, damage)
        return False
    previous = gram_store.load_latest(store, inputs.experiment_id)
    gram_store.save(
        store, inputs.experiment_id, result, None if previous is None else previous.fingerprint
    )
    summary = {"shards": len(shards), "snapshots": len(entries), "parameters": result.gram.size}
    store.put(jobs.result_key(key), json.dumps(summary).encode())
    with sessions() as session:
        _mark(session, key, "ready")
        members = inputs.members or (inputs.experiment_id,)
        if not analyses.all_exist(session, members):
            log.info("an experiment of %s was deleted while its Gram was computed", key)
            store.delete_prefix(experiment_prefix(inputs.experiment_id))
    log.info("joined the Gram of %s from %d shards", key, len(shards))
    return True

"""Analysis use cases: PCA, distances and trajectories of an experiment's stored snapshots.

Three phases, so that no database connection is held while numbers are crunched:

1. :func:`load_inputs` reads the experiment and its snapshot records in a short session;
2. :class:`Analyzer` gets the Gram matrix of the healthy snapshots (memory, then the store's
   cache, extended with new rows; computed once for identical concurrent requests) in a bounded
   thread pool;
3. :func:`pca`, :func:`distances_at`, :func:`trajectories` answer from the Gram matrix.

A damaged snapshot (missing or corrupt object) is recorded in the database and left out of the
Gram matrix; an analysis that needs it raises :class:`DamagedSnapshot` naming run and epoch,
while selections that leave it out still work.

Why one module of ~400 lines: the three phases share the snapshot references, the damage
records and the Analyzer's single-flight cache; split apart, each part would import the others.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import cached_property
from typing import TypeVar

from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from weightspace import analysis
from weightspace.snapshots import ObjectStore
from weightspace.spec import ExperimentSpec, UploadSpec, parse_spec
from weightspace_app.access import Conflict, InvalidQuery, Principal
from weightspace_app.infra.db import Experiment, SnapshotRecord
from weightspace_app.infra.gram_store import DamagedSnapshot, SnapshotRef, fingerprint, gram_of
from weightspace_app.usecases.experiments import get_experiment

__all__ = ["Analyzer", "DamagedSnapshot", "Inputs", "load_inputs"]

T = TypeVar("T")


@dataclass(frozen=True)
class Inputs:
    """An experiment's spec, status and snapshot records (ordered by run, epoch), detached."""

    experiment_id: uuid.UUID
    spec: ExperimentSpec | UploadSpec
    status: str
    records: tuple[SnapshotRef, ...]
    error: str | None = None  # why it failed, if it did
    # The experiments the snapshots belong to (several for a joint analysis; empty: just
    # ``experiment_id``): a Gram cached for them must not outlive any of them.
    members: tuple[uuid.UUID, ...] = ()

    def unavailable(self, reason: str) -> Conflict:
        """409 for an analysis that cannot be answered: a failed experiment says why it never
        will be; otherwise ``reason`` (not yet)."""
        if self.status == "failed":
            return Conflict(f"experiment failed: {self.error or 'no cause recorded'}")
        return Conflict(reason)

    @property
    def replicas(self) -> int:
        return self.spec.replicas

    @property
    def schedule(self) -> list[int]:
        """Epochs with snapshots: the spec's schedule, or for uploads the epochs uploaded so far."""
        if isinstance(self.spec, ExperimentSpec):
            return self.spec.snapshot_epochs()
        return sorted({r.epoch for r in self.records})

    @property
    def complete(self) -> bool:
        return self.status == "succeeded"

    @property
    def healthy(self) -> tuple[SnapshotRef, ...]:
        return tuple(r for r in self.records if r.damaged is None)


def _records(experiment_id: uuid.UUID) -> Select[SnapshotRecord]:
    return (
        select(SnapshotRecord)
        .where(SnapshotRecord.experiment_id == experiment_id)
        .order_by(SnapshotRecord.run, SnapshotRecord.epoch)
    )


def ref_of(r: SnapshotRecord) -> SnapshotRef:
    return SnapshotRef(r.run, r.epoch, r.key, r.sha256, dict(r.metrics), r.damaged, r.gradient)


def load_inputs(
    sessions: sessionmaker[Session], principal: Principal, experiment_id: uuid.UUID
) -> Inputs:
    with sessions() as session:
        experiment = get_experiment(session, principal, experiment_id)
        records = tuple(ref_of(r) for r in session.scalars(_records(experiment_id)))
        return Inputs(
            experiment_id,
            parse_spec(experiment.spec),
            experiment.status,
            records,
            experiment.error,
        )


def mark_damaged(
    sessions: sessionmaker[Session], experiment_id: uuid.UUID, ref: SnapshotRef, why: str
) -> None:
    with sessions() as session:
        session.execute(
            update(SnapshotRecord)
            .where(
                SnapshotRecord.experiment_id == experiment_id,
                SnapshotRecord.run == ref.run,
                SnapshotRecord.epoch == ref.epoch,
                SnapshotRecord.sha256 == ref.sha256,
            )
            .values(damaged=why[:500])
        )
        session.commit()


# --------------------------------------------------------------------------- the Gram matrix


@dataclass(frozen=True)
class Snapshots:
    """The Gram matrix of an experiment's healthy snapshots, rows in (run, epoch) order."""

    inputs: Inputs
    refs: tuple[SnapshotRef, ...]
    gram: analysis.Gram

    def position(self, ref: SnapshotRef) -> int:
        return self._positions[(ref.run, ref.epoch)]

    @cached_property
    def _positions(self) -> dict[tuple[int, int], int]:
        return {(r.run, r.epoch): i for i, r in enumerate(self.refs)}


def all_exist(
    session: Session, experiment_ids: Sequence[uuid.UUID], principal: Principal | None = None
) -> bool:
    """Whether every one of these experiments still exists (committed state, read now), and
    belongs to ``principal`` if given."""
    wanted = set(experiment_ids)
    query = select(func.count()).select_from(Experiment).where(Experiment.id.in_(wanted))
    if principal is not None and not principal.admin:
        query = query.where(Experiment.owner == principal.id)
    return session.scalar(query) == len(wanted)


def build(
    store: ObjectStore,
    inputs: Inputs,
    on_damage: Callable[[SnapshotRef, str], None] | None = None,
    alive: Callable[[Sequence[uuid.UUID]], bool] | None = None,
) -> Snapshots:
    """The Gram of ``inputs``' healthy snapshots; snapshots found damaged on the way are reported
    to ``on_damage`` and left out. ``alive`` (e.g. :func:`all_exist`) says whether experiments
    still exist: a Gram cached for ones deleted meanwhile is deleted again (see
    :func:`~weightspace_app.infra.gram_store.gram_of`)."""
    members = inputs.members or (inputs.experiment_id,)
    still = None if alive is None else (lambda: alive(members))
    healthy = list(inputs.healthy)
    while True:
        if not healthy:
            if broken := [r for r in inputs.records if r.damaged]:
                raise DamagedSnapshot(broken[0], broken[0].damaged or "it could not be read")
            raise inputs.unavailable("no readable snapshots have been captured yet")
        try:
            cached = gram_of(store, inputs.experiment_id, healthy, still)
            break
        except DamagedSnapshot as damage:
            if on_damage is not None:
                on_damage(damage.ref, damage.reason)
            healthy = [r for r in healthy if r.entry != damage.ref.entry]
            inputs = replace(
                inputs,
                records=tuple(
                    replace(r, damaged=damage.reason) if r.entry == damage.ref.entry else r
                    for r in inputs.records
                ),
            )
    by_entry = {e: i for i, e in enumerate(cached.entries)}
    order = [by_entry[r.entry] for r in healthy]
    gram = cached.gram if order == list(range(len(order))) else cached.gram.subset(order)
    return Snapshots(inputs, tuple(healthy), gram)


class Analyzer:
    """Runs analyses in a bounded pool; one Gram computation per (experiment, fingerprint) at a
    time, shared by every request that needs it, and the latest matrices kept in memory."""

    def __init__(
        self,
        store: ObjectStore,
        sessions: sessionmaker[Session],
        *,
        workers: int = 2,
        memory_bytes: int = 256 << 20,
    ) -> None:
        self.store = store
        self.sessions = sessions
        self.executor = ThreadPoolExecutor(max(1, workers), thread_name_prefix="analysis")
        self.memory_bytes = memory_bytes
        self._lock = threading.Lock()
        self._inflight: dict[tuple[uuid.UUID, str], Future[Snapshots]] = {}
        self._memory: OrderedDict[tuple[uuid.UUID, str], Snapshots] = OrderedDict()

    def shutdown(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)

    def submit(self, fn: Callable[..., T], *args: object) -> Future[T]:
        return self.executor.submit(fn, *args)

    def analyse(self, inputs: Inputs, fn: Callable[..., T], *args: object) -> Future[T]:
        """``fn(snapshots, *args)`` in the pool, once the experiment's snapshots (their Gram
        built, or shared with other requests: :meth:`snapshots`) are ready."""
        answer: Future[T] = Future()

        def then(ready: Future[Snapshots]) -> None:
            try:
                follow = self.submit(fn, ready.result(), *args)
            except BaseException as error:  # the Gram failed, or the pool is shut down
                answer.set_exception(error)
                return
            follow.add_done_callback(lambda done: _settle_into(answer, done))

        self.snapshots(inputs).add_done_callback(then)
        return answer

    def snapshots(self, inputs: Inputs) -> Future[Snapshots]:
        key = (inputs.experiment_id, fingerprint(inputs.healthy))
        with self._lock:
            if (hit := self._memory.get(key)) is not None:
                self._memory.move_to_end(key)
                done: Future[Snapshots] = Future()
                done.set_result(replace(hit, inputs=inputs))
                return done
            if (running := self._inflight.get(key)) is not None:
                return running
            future = self.executor.submit(self._build, inputs)
            self._inflight[key] = future
        future.add_done_callback(lambda f: self._settle(key, f))
        return future

    def _build(self, inputs: Inputs) -> Snapshots:
        def damaged(ref: SnapshotRef, why: str) -> None:
            mark_damaged(self.sessions, inputs.experiment_id, ref, why)

        return build(self.store, inputs, damaged, self.exist)

    def exist(self, experiment_ids: Sequence[uuid.UUID]) -> bool:
        with self.sessions() as session:
            return all_exist(session, experiment_ids)

    def _settle(self, key: tuple[uuid.UUID, str], future: Future[Snapshots]) -> None:
        with self._lock:
            self._inflight.pop(key, None)
            if future.cancelled() or future.exception() is not None:
                return
            self._memory[key] = future.result()
            used = sum(s.gram.matrix.nbytes for s in self._memory.values())
            while len(self._memory) > 1 and used > self.memory_bytes:
                _, dropped = self._memory.popitem(last=False)
                used -= dropped.gram.matrix.nbytes


def _settle_into(answer: Future[T], done: Future[T]) -> None:
    if (error := done.exception()) is not None:
        answer.set_exception(error)
    else:
        answer.set_result(done.result())


def all_snapshots(
    session: Session, store: ObjectStore, experiment: Experiment
) -> tuple[list[SnapshotRecord], analysis.Gram]:
    """All of a finished experiment's snapshots and their Gram matrix (for the report job);
    raises :class:`DamagedSnapshot` if any cannot be read."""
    records = list(session.scalars(_records(experiment.id)))
    refs = tuple(ref_of(r) for r in records)
    inputs = Inputs(experiment.id, parse_spec(experiment.spec), experiment.status, refs)
    snapshots = build(store, inputs, alive=lambda ids: all_exist(session, ids))
    _needs(snapshots, refs)
    return records, snapshots.gram


# --------------------------------------------------------------------------- use cases


def _needs(snapshots: Snapshots, refs: Sequence[SnapshotRef]) -> None:
    """Raise DamagedSnapshot for the first of ``refs`` that is not in the healthy set."""
    healthy = snapshots._positions
    for ref in refs:
        if (ref.run, ref.epoch) not in healthy:
            raise DamagedSnapshot(ref, ref.damaged or "it could not be read")


require = _needs  # for the analyses across experiments (joint.py)


def check_selection(
    inputs: Inputs, runs: Sequence[int] | None, epochs: Sequence[int] | None
) -> list[SnapshotRef]:
    replicas, schedule = inputs.replicas, inputs.schedule
    if runs is not None and (bad := sorted(set(runs) - set(range(replicas)))):
        raise InvalidQuery(
            "runs", f"runs {bad} do not exist (this experiment has runs 0..{replicas - 1})"
        )
    if epochs is not None and (bad := sorted(set(epochs) - set(schedule))):
        raise InvalidQuery("epochs", f"epochs {bad} are not in the snapshot schedule {schedule}")
    if not inputs.records:
        raise inputs.unavailable("no snapshots have been captured yet")
    chosen = [
        r
        for r in inputs.records
        if (runs is None or r.run in runs) and (epochs is None or r.epoch in epochs)
    ]
    if not chosen:
        raise inputs.unavailable("none of the requested snapshots has been captured yet")
    return chosen


@dataclass(frozen=True)
class PCAReport:
    refs: list[SnapshotRef]
    result: analysis.PCAResult
    complete: bool


def pca(snapshots: Snapshots, chosen: Sequence[SnapshotRef], components: int) -> PCAReport:
    _needs(snapshots, chosen)
    n = len(chosen)
    if n < components + 1:
        raise snapshots.inputs.unavailable(
            f"PCA with {components} components needs at least {components + 1} snapshots; "
            f"{n} {'are' if n != 1 else 'is'} selected"
            + ("" if snapshots.inputs.complete else " (the experiment is still running)")
        )
    gram = snapshots.gram.subset([snapshots.position(r) for r in chosen])
    return PCAReport(list(chosen), analysis.pca(gram, components), snapshots.inputs.complete)


def check_epoch(inputs: Inputs, epoch: int | None) -> int:
    """The requested epoch (validated), or by default the final epoch once every run has it,
    else the latest epoch that every run has reached."""
    if epoch is not None:
        if epoch not in (schedule := inputs.schedule):
            raise InvalidQuery("epoch", f"epoch {epoch} is not in the snapshot schedule {schedule}")
        return epoch
    by_run: dict[int, set[int]] = {r: set() for r in range(inputs.replicas)}
    for record in inputs.records:
        by_run[record.run].add(record.epoch)
    common = set.intersection(*by_run.values())
    if not common:
        raise inputs.unavailable("no snapshot epoch has been captured for every run yet")
    return max(common)


def run_starts(records: Sequence[SnapshotRef]) -> dict[int, SnapshotRef]:
    starts: dict[int, SnapshotRef] = {}
    for record in records:
        starts.setdefault(record.run, record)
    return starts


@dataclass(frozen=True)
class DistanceReport:
    epoch: int
    runs: list[int]
    distances: list[list[float]]
    cosine_similarity: list[list[float]]
    distance_from_origin: list[float]
    distance_from_init: list[float]
    complete: bool


def distances_at(snapshots: Snapshots, epoch: int) -> DistanceReport:
    """Run-by-run distances at one epoch, with each run's distance from the origin and its start."""
    inputs = snapshots.inputs
    at = [r for r in inputs.records if r.epoch == epoch]
    if not at:
        raise inputs.unavailable(f"epoch {epoch} has not been captured yet")
    starts = run_starts(inputs.records)
    _needs(snapshots, [*at, *(starts[r.run] for r in at)])
    positions = [snapshots.position(r) for r in at]
    chosen = snapshots.gram.subset(positions)
    everything = snapshots.gram.distances()
    from_init = [
        float(everything[snapshots.position(starts[r.run]), p])
        for r, p in zip(at, positions, strict=True)
    ]
    return DistanceReport(
        epoch=epoch,
        runs=[r.run for r in at],
        distances=chosen.distances().tolist(),
        cosine_similarity=chosen.cosine().tolist(),
        distance_from_origin=chosen.norms().tolist(),
        distance_from_init=from_init,
        complete=inputs.complete,
    )


def trajectories(
    snapshots: Snapshots,
) -> list[tuple[int, list[SnapshotRef], analysis.TrajectoryMetrics]]:
    """Per run: its snapshots in epoch order and their trajectory metrics."""
    inputs = snapshots.inputs
    if not inputs.records:
        raise inputs.unavailable("no snapshots have been captured yet")
    _needs(snapshots, inputs.records)
    out = []
    for run in sorted({r.run for r in inputs.records}):
        refs = [r for r in inputs.records if r.run == run]
        metrics = analysis.trajectory_metrics(snapshots.gram, [snapshots.position(r) for r in refs])
        out.append((run, refs, metrics))
    return out

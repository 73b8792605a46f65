"""Analyses across experiments: one PCA basis or one distance matrix for snapshots selected from
several experiments of the same parameter layout (``POST /analyses``): the same tensors by name
and shape, each vector read in the canonical order of :mod:`weightspace.layouts`, whatever
order its experiment stores it in.

The selected snapshots are analysed exactly as one experiment's are, by the same machinery: a
*joint* :class:`~weightspace_app.usecases.analyses.Inputs` whose runs are the selected (experiment,
run) pairs numbered in selection order, handed to the same
:class:`~weightspace_app.usecases.analyses.Analyzer` (bounded pool, single flight) and Gram cache
(:func:`~weightspace_app.infra.gram_store.gram_of`, under a key derived from the experiment ids).

A request is stored as ``analyses/<id>.json`` in the snapshot store so that any API process can
answer ``GET /analyses/{id}``; its id is derived from the owner and the request, so the same
request gets the same id (and its cached answer). A marker ``experiments/<member>/analyses/<id>``
under each selected experiment lets deleting that experiment find and delete the request and its
cached Gram (:func:`forget`).
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from weightspace import layouts
from weightspace.errors import InvalidField
from weightspace.snapshots import (
    HEADER_PROBE_BYTES,
    ObjectNotFound,
    ObjectStore,
    experiment_prefix,
    parse_header,
)
from weightspace.spec import UploadSpec
from weightspace_app.access import InvalidQuery, NotFound, Principal
from weightspace_app.infra.gram_store import DamagedSnapshot, SnapshotRef, fingerprint, load_latest
from weightspace_app.usecases import analyses

Kind = Literal["pca", "distances", "barriers"]
NAMESPACE = uuid.UUID("6b0f3d2e-4a51-4c1e-9d7a-3f2b8c5e1a90")


@dataclass(frozen=True)
class Part:
    """One experiment's share of a selection (``None``: all runs / all epochs)."""

    experiment: uuid.UUID
    runs: tuple[int, ...] | None = None
    epochs: tuple[int, ...] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "experiment": str(self.experiment),
            "runs": None if self.runs is None else list(self.runs),
            "epochs": None if self.epochs is None else list(self.epochs),
        }


@dataclass(frozen=True)
class Request:
    kind: Kind
    parts: tuple[Part, ...]
    components: int = 2

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "components": self.components,
            "selection": [p.to_json() for p in self.parts],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Request:
        parts = tuple(
            Part(
                uuid.UUID(p["experiment"]),
                None if p["runs"] is None else tuple(p["runs"]),
                None if p["epochs"] is None else tuple(p["epochs"]),
            )
            for p in data["selection"]
        )
        return cls(data["kind"], parts, int(data["components"]))

    def id_for(self, principal: Principal) -> uuid.UUID:
        text = json.dumps({"owner": principal.id, **self.to_json()}, sort_keys=True)
        return uuid.uuid5(NAMESPACE, text)


def _request_key(analysis_id: uuid.UUID) -> str:
    return f"analyses/{analysis_id.hex}.json"


def joint_key(experiments: Iterable[uuid.UUID]) -> uuid.UUID:
    """The id the Gram cache of a selection from these experiments is kept under."""
    return uuid.uuid5(NAMESPACE, ",".join(sorted(str(e) for e in experiments)))


def _member_key(experiment_id: uuid.UUID, analysis_id: uuid.UUID) -> str:
    """A marker under the member experiment's prefix: what :func:`forget` finds."""
    return f"{experiment_prefix(experiment_id)}analyses/{analysis_id.hex}"


def save_request(
    sessions: sessionmaker[Session], store: ObjectStore, principal: Principal, request: Request
) -> uuid.UUID:
    """Store the request (and a marker under each of its experiments, for :func:`forget`).
    Checked after the writes: if an experiment of it is gone (deleted meanwhile) or not the
    caller's, the writes are undone and the answer is 404."""
    analysis_id = request.id_for(principal)
    members = [p.experiment for p in request.parts]
    key = joint_key(members).hex.encode()
    for experiment_id in members:
        store.put(_member_key(experiment_id, analysis_id), key)
    body = {"owner": principal.id, "request": request.to_json()}
    store.put(_request_key(analysis_id), json.dumps(body, sort_keys=True).encode())
    with sessions() as session:
        present = analyses.all_exist(session, members, principal)
    if not present:
        _discard(store, analysis_id, members)
        raise NotFound("an experiment of the selection was not found")
    return analysis_id


def _discard(store: ObjectStore, analysis_id: uuid.UUID, members: Sequence[uuid.UUID]) -> None:
    """Undo :func:`save_request`'s writes (no Gram is cached before it returns)."""
    store.delete_prefix(_request_key(analysis_id))
    for experiment_id in members:
        store.delete_prefix(_member_key(experiment_id, analysis_id))


def forget(store: ObjectStore, experiment_id: uuid.UUID) -> int:
    """Delete the stored requests and cached Grams of every analysis across experiments that
    includes this one (its own objects are left to the caller); return how many."""
    markers = store.keys(f"{experiment_prefix(experiment_id)}analyses/")
    for marker in markers:
        analysis_id = uuid.UUID(marker.rsplit("/", 1)[1])
        store.delete_prefix(_request_key(analysis_id))
        with contextlib.suppress(ObjectNotFound):  # deleted meanwhile
            store.delete_prefix(experiment_prefix(uuid.UUID(store.get(marker).decode())))
        store.delete_prefix(marker)
    return len(markers)


def load_stored_request(store: ObjectStore, analysis_id: uuid.UUID) -> tuple[str, Request]:
    """The stored request and its owner (for the worker, which acts for that owner)."""
    try:
        body = json.loads(store.get(_request_key(analysis_id)))
    except ObjectNotFound:
        raise NotFound(f"analysis {analysis_id} not found") from None
    return str(body.get("owner")), Request.from_json(body["request"])


def load_request(store: ObjectStore, principal: Principal, analysis_id: uuid.UUID) -> Request:
    owner, request = load_stored_request(store, analysis_id)
    if owner != principal.id:
        raise NotFound(f"analysis {analysis_id} not found")
    return request


@dataclass(frozen=True)
class Label:
    experiment: uuid.UUID
    run: int
    epoch: int


@dataclass(frozen=True)
class Joint:
    """The selection resolved: the joint inputs, their rows' labels, and the chosen refs."""

    inputs: analyses.Inputs
    chosen: list[SnapshotRef]
    labels: dict[int, tuple[uuid.UUID, int]]  # joint run -> (experiment, run)

    def label(self, ref: SnapshotRef) -> Label:
        experiment, run = self.labels[ref.run]
        return Label(experiment, run, ref.epoch)

    def damage(self, error: DamagedSnapshot) -> DamagedSnapshot:
        """``error`` naming the experiment and run its snapshot belongs to (not the joint row)."""
        label = self.label(error.ref)
        return DamagedSnapshot(replace(error.ref, run=label.run), error.reason, label.experiment)


def _layout(store: ObjectStore, ref: SnapshotRef) -> list[Any]:
    """The flat order ([name, shape] pairs) a snapshot's vector follows, from its header."""
    prefix = store.get_range(ref.key, 0, HEADER_PROBE_BYTES)
    return list(json.loads(parse_header(prefix).metadata.get("layout", "[]")))


def resolve(
    sessions: sessionmaker[Session], store: ObjectStore, principal: Principal, request: Request
) -> Joint:
    """Check the selection (ownership, runs, epochs, one layout) and build the joint inputs."""
    seen = [p.experiment for p in request.parts]
    if len(set(seen)) != len(seen):
        raise InvalidField("selection", "each experiment may appear once in the selection")
    refs: list[SnapshotRef] = []
    labels: dict[int, tuple[uuid.UUID, int]] = {}
    layout: list[Any] | None = None
    complete = True
    for i, part in enumerate(request.parts):
        inputs = analyses.load_inputs(sessions, principal, part.experiment)
        complete = complete and inputs.complete
        try:
            chosen = analyses.check_selection(inputs, part.runs, part.epochs)
        except InvalidQuery as error:
            raise InvalidField(f"selection.{i}.{error.field}", str(error)) from None
        mine = _layout(store, chosen[0])
        if layout is None:
            layout = mine
        elif (why := layouts.difference(layout, mine)) is not None:
            raise InvalidField(
                f"selection.{i}.experiment",
                f"its parameter layout differs from the first experiment's: {why}; analyses "
                "across experiments need the same tensors (names and shapes)",
            )
        pieces = layouts.canonical_pieces(mine)  # every vector is read in canonical order
        for ref in chosen:
            joint_run = next(
                (g for g, key in labels.items() if key == (part.experiment, ref.run)), None
            )
            if joint_run is None:
                joint_run = len(labels)
                labels[joint_run] = (part.experiment, ref.run)
            refs.append(
                SnapshotRef(
                    joint_run,
                    ref.epoch,
                    ref.key,
                    ref.sha256,
                    ref.metrics,
                    ref.damaged,
                    pieces=pieces,
                )
            )
    refs.sort(key=lambda r: (r.run, r.epoch))
    inputs = analyses.Inputs(
        joint_key(seen),
        UploadSpec(source="upload", replicas=max(1, len(labels))),
        "succeeded" if complete else "running",
        tuple(refs),
        members=tuple(seen),
    )
    return Joint(inputs, refs, labels)


def cached(store: ObjectStore, joint: Joint) -> bool:
    """Whether the store already holds the Gram matrix of exactly these snapshots."""
    latest = load_latest(store, joint.inputs.experiment_id)
    healthy = sorted(joint.inputs.healthy, key=lambda r: (r.run, r.epoch))
    return latest is not None and latest.fingerprint == fingerprint(healthy)


@dataclass(frozen=True)
class DistanceMatrix:
    distances: np.ndarray
    cosine_similarity: np.ndarray
    distance_from_origin: np.ndarray


def pca(snapshots: analyses.Snapshots, joint: Joint, components: int) -> analyses.PCAReport:
    return analyses.pca(snapshots, joint.chosen, components)


def distances(snapshots: analyses.Snapshots, joint: Joint) -> DistanceMatrix:
    analyses.require(snapshots, joint.chosen)
    gram = snapshots.gram.subset([snapshots.position(r) for r in joint.chosen])
    return DistanceMatrix(gram.distances(), gram.cosine(), gram.norms())

"""Use cases for an experiment's landscape planes (``GET /experiments/{id}/landscape``).

A plane (one run, resolution, margin, normalisation) is a cached worker job (:mod:`.jobs`): the
first request checks that it can be computed and queues it; the worker reads the run's snapshots
and computes it through the core (:func:`weightspace.planes.landscape_plane`) with the model of
the experiment's spec, or of an upload's declared ``model`` (its vectors put in the model's order
by name, :func:`weightspace.layouts.reorder`).

For an upload of an architecture the service cannot build, the client evaluates the plane: it
gets the plane as a file (:func:`plane`, cached beside the snapshots), computes the losses of its
grid with its own model and sends them (:func:`save_evaluated`); they are then stored and served
like a plane the service computed (:func:`evaluated`), marked ``evaluated_by: client``.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load as st_load
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from weightspace import layouts, planes
from weightspace.data import load_dataset
from weightspace.errors import InvalidField
from weightspace.imports import BUFFER_PREFIX
from weightspace.models import declared_layout
from weightspace.snapshots import (
    ObjectNotFound,
    ObjectStore,
    Snapshot,
    experiment_prefix,
    get_snapshot,
    parse_header,
)
from weightspace.spec import ExperimentSpec, parse_spec
from weightspace_app.access import Conflict, InvalidQuery, Unsupported
from weightspace_app.infra.db import Experiment, SnapshotRecord
from weightspace_app.usecases import jobs

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

    def plane_at(self, experiment_id: uuid.UUID) -> str:
        """Where the plane given out for evaluation elsewhere is kept (see :func:`plane`)."""
        return self.stored_at(experiment_id).removesuffix(".json") + ".plane.safetensors"

    def to_args(self) -> list[Any]:
        return [self.run, self.resolution, self.margin, self.normalisation]


def evaluation_spec(experiment: Experiment) -> ExperimentSpec | None:
    """The spec whose model and data evaluate the experiment's snapshots: its training spec, or
    what an upload declares; ``None`` for an upload that declares no model."""
    spec = parse_spec(experiment.spec)
    return spec if isinstance(spec, ExperimentSpec) else spec.evaluation_spec()


def without_model(experiment_id: uuid.UUID, what: str) -> str:
    """What a 409 says when ``what`` needs a model that an upload does not declare."""
    base = f"/experiments/{experiment_id}"
    advice = (
        f"{what} evaluate the model, and this experiment's uploads declare none the service can "
        "build: create the upload with a `model` (and `dataset`) the service knows"
    )
    if what != "landscape planes":
        return advice
    return (
        f"{advice}, or evaluate the plane with your own model: GET {base}/landscape/plane gives "
        f"the plane, PUT {base}/landscape takes the losses of its grid (the client's "
        "weightspace_client.planes.evaluate does both)"
    )


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
    if evaluation_spec(experiment) is None:
        raise Unsupported(without_model(experiment.id, "landscape planes"))
    _records_of_plane(session, experiment, options)


def _records_of_plane(
    session: Session, experiment: Experiment, options: Options
) -> list[SnapshotRecord]:
    """The run's snapshots, once checked to span a plane (Conflict, InvalidQuery otherwise)."""
    if experiment.status != "succeeded":
        raise Conflict(
            f"landscape planes are computed once the experiment has succeeded; it is "
            f"{experiment.status}"
        )
    replicas = parse_spec(experiment.spec).replicas
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
    return records


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
    spec = evaluation_spec(experiment)
    if spec is None:
        raise Unsupported(without_model(experiment_id, "landscape planes"))
    records = _records(session, experiment_id, options.run)
    data = load_dataset(spec.dataset, data_dir, allow_download=allow_download)
    order = declared_layout(spec.model, data.input_shape)
    vectors = [model_vector(get_snapshot(store, r.key, r.sha256), order) for r in records]
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


def model_vector(snapshot: Snapshot, order: layouts.Pairs) -> np.ndarray:
    """A snapshot's vector in the model's order ``order`` (by name; as stored if the same)."""
    return layouts.reorder(snapshot.params, snapshot.layout, order)


def plane(session: Session, store: ObjectStore, experiment: Experiment, options: Options) -> bytes:
    """The plane of ``options`` as a file to evaluate elsewhere (:func:`weightspace.planes.
    plane_file`): directions from the PCA of the run's snapshots, as the service's own planes;
    computed once, then kept beside the snapshots."""
    records = _records_of_plane(session, experiment, options)
    with contextlib.suppress(ObjectNotFound):
        return store.get(options.plane_at(experiment.id))
    snapshots = [get_snapshot(store, r.key, r.sha256) for r in records]
    final = store.get(records[-1].key)
    metadata = parse_header(final).metadata
    layout = metadata.get("source_layout") or json.dumps(
        {"vector": [[n, list(s), "float32"] for n, s in snapshots[-1].layout], "buffers": []}
    )
    try:
        result = planes.pca_plane(
            [s.params for s in snapshots],
            normalisation=options.normalisation,
            layout=snapshots[-1].layout,
        )
    except ValueError as error:  # e.g. snapshots that do not span two dimensions
        raise Conflict(f"run {options.run} spans no plane: {error}") from None
    data = planes.plane_file(
        result,
        planes.grid_axis(result.trajectory[:, 0], options.resolution, options.margin),
        planes.grid_axis(result.trajectory[:, 1], options.resolution, options.margin),
        dtype=snapshots[-1].params.dtype,
        source_layout=layout,
        buffers={
            name.removeprefix(BUFFER_PREFIX): value
            for name, value in st_load(final).items()
            if name.startswith(BUFFER_PREFIX)
        },
        details={"run": options.run, "epochs": [r.epoch for r in records]},
    )
    store.put(options.plane_at(experiment.id), data)
    return data


def evaluated(
    store: ObjectStore, experiment: Experiment, options: Options
) -> dict[str, Any] | None:
    """The plane a client evaluated for an upload that declares no model, if it sent one."""
    if evaluation_spec(experiment) is not None:
        return None
    try:
        document: dict[str, Any] = json.loads(store.get(options.stored_at(experiment.id)))
    except ObjectNotFound:
        return None
    return document


def _grid(name: str, values: Sequence[Sequence[float]], rows: int, columns: int) -> list[Any]:
    """``values`` if a ``rows`` x ``columns`` grid (finite numbers: the schema checks); else 422."""
    shape = np.shape(np.asarray(values, dtype=object))
    if shape != (rows, columns):
        raise InvalidField(
            name, f"must be {rows} rows (betas) of {columns} losses (alphas); got shape {shape}"
        )
    return [list(map(float, row)) for row in values]


def save_evaluated(
    session: Session,
    store: ObjectStore,
    experiment: Experiment,
    options: Options,
    losses: dict[str, Any],
) -> dict[str, Any]:
    """Store the losses a client evaluated over :func:`plane`'s grid as the landscape of
    ``options`` (``losses``: ``train_loss``, ``test_loss`` (or None), ``train_examples``,
    ``test_examples``); the plane must have been given out first. Returns its document."""
    if evaluation_spec(experiment) is not None:
        raise Unsupported(
            "the service evaluates this experiment's planes itself (its model is known): "
            f"GET /experiments/{experiment.id}/landscape"
        )
    records = _records_of_plane(session, experiment, options)
    try:
        header = parse_header(store.get(options.plane_at(experiment.id)))
    except ObjectNotFound:
        raise Conflict(
            "this plane has not been given out yet: GET "
            f"/experiments/{experiment.id}/landscape/plane with the same parameters first"
        ) from None
    meta = {k: v for k, v in header.metadata.items() if k not in ("format", "layout")}
    document: dict[str, Any] = {
        key: value if key == "normalisation" else json.loads(value) for key, value in meta.items()
    }
    rows, columns = len(document["betas"]), len(document["alphas"])
    document |= {
        "epochs": [r.epoch for r in records],
        "train_loss": _grid("train_loss", losses["train_loss"], rows, columns),
        "test_loss": None
        if losses.get("test_loss") is None
        else _grid("test_loss", losses["test_loss"], rows, columns),
        "train_examples": losses["train_examples"],
        "test_examples": losses.get("test_examples"),
        "evaluated_by": "client",
    }
    store.put(options.stored_at(experiment.id), json.dumps(document).encode())
    return document

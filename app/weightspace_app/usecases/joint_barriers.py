"""Barriers across experiments (``POST /analyses`` with kind ``barriers``): a cached worker job.

The selection is resolved as for the other joint analyses (:func:`.joint.resolve`: ownership,
runs, epochs, one layout); every selected experiment must have been trained by the service with
one model and data set (the model evaluates the lines). The worker then computes the lines with
the same core function as one experiment's barriers (:func:`weightspace.landscape.barriers`),
over a joint result whose runs are the selected (experiment, run) pairs: lines between every two
of their last selected snapshots, and per pair with two or more selected snapshots its control.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from weightspace import landscape
from weightspace.analysis import ArrayVector, gram
from weightspace.claims import ExperimentResult
from weightspace.data import load_dataset
from weightspace.errors import InvalidField
from weightspace.snapshots import ObjectStore, experiment_prefix, get_snapshot
from weightspace.spec import ExperimentSpec
from weightspace_app.access import Conflict, Principal
from weightspace_app.infra.db import Experiment
from weightspace_app.usecases import jobs, joint
from weightspace_app.usecases.experiments import no_model


def key(analysis_id: uuid.UUID) -> str:
    return f"analysis/{analysis_id.hex}"


def stored_at(analysis_id: uuid.UUID, request: joint.Request) -> str:
    """Where the lines' JSON is kept: beside the selection's cached Grams, which
    :func:`.joint.forget` deletes when any of its experiments is deleted."""
    members = joint.joint_key(p.experiment for p in request.parts)
    return f"{experiment_prefix(members)}barriers/{analysis_id.hex}.json"


def common_spec(session: Session, request: joint.Request) -> ExperimentSpec:
    """The first experiment's spec, once every selected one is known to share model and data."""
    first: ExperimentSpec | None = None
    for i, part in enumerate(request.parts):
        experiment = session.get_one(Experiment, part.experiment)
        field = f"selection.{i}.experiment"
        if experiment.source != "train":
            raise InvalidField(field, no_model("barriers"))
        spec = ExperimentSpec.model_validate(experiment.spec)
        if first is None:
            first = spec
        elif (spec.model, spec.dataset) != (first.model, first.dataset):
            raise InvalidField(
                field,
                "its model or data set differs from the first experiment's; barriers across "
                "experiments need one model and data set",
            )
    assert first is not None  # a selection has at least one part
    return first


def prepare(session: Session, request: joint.Request, resolved: joint.Joint) -> str:
    """Check that the barriers can be computed (409, or 422 naming the field); the queue of the
    first selected experiment, where the job goes."""
    common_spec(session, request)
    if not resolved.inputs.complete:
        raise Conflict(
            "barriers across experiments are computed once every selected experiment has succeeded"
        )
    return session.get_one(Experiment, request.parts[0].experiment).queue


def compute(
    sessions: sessionmaker[Session],
    store: ObjectStore,
    analysis_id: uuid.UUID,
    *,
    device: str = "cpu",
    data_dir: Path | None = None,
    allow_download: bool = False,
) -> dict[str, Any]:
    """The worker's use case: the lines of the analysis, cached (see :func:`.jobs.run`)."""
    owner, request = joint.load_stored_request(store, analysis_id)
    # The API checked the selection against its owner when it queued the job.
    resolved = joint.resolve(sessions, store, Principal(owner, admin=True), request)

    def lines(session: Session) -> dict[str, Any]:
        spec = common_spec(session, request)
        refs = resolved.chosen  # ordered by joint run, then epoch
        vectors = [get_snapshot(store, r.key, r.sha256).params for r in refs]
        result = ExperimentResult(
            role="",
            title=str(analysis_id),
            spec=spec,
            runs=[r.run for r in refs],
            epochs=[r.epoch for r in refs],
            metrics=[r.metrics for r in refs],
            gram=gram([ArrayVector(np.asarray(v, dtype=np.float64)) for v in vectors]),
            vector=vectors.__getitem__,
        )
        data = load_dataset(spec.dataset, data_dir, allow_download=allow_download)
        report = landscape.barriers(result, data, device=device)
        documents = []
        for line, document in zip(report.lines, report.to_dict()["lines"], strict=True):
            for end, (run, epoch) in (("a", line.a), ("b", line.b)):
                experiment, own_run = resolved.labels[run]
                document[end] = {"experiment": str(experiment), "run": own_run, "epoch": epoch}
            documents.append(document)
        return {"lines": documents}

    return jobs.run(
        sessions,
        store,
        key(analysis_id),
        lines,
        owner=owner,
        experiment_id=request.parts[0].experiment,
        stored_at=stored_at(analysis_id, request),
        members=[p.experiment for p in request.parts],
    )

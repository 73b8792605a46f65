"""Submitting work: the one path by which experiments and suites come into being.

``POST /experiments`` and ``POST /suites`` call it, and so do the tests and the benches, so they
exercise what the API runs. A submission is admitted against the limits and quotas
(:mod:`.limits`) and the live workers' data sets (:mod:`weightspace_app.infra.workers`), then
inserted once per ``Idempotency-Key`` with its tasks' outbox entries in the same transaction
(:mod:`weightspace_app.infra.idempotency`); when it is new the outbox relay is woken, so the
tasks are published at once (a broker that is down delays them but loses none).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic

from sqlalchemy.orm import Session

from weightspace.data import DatasetUnavailable
from weightspace.presets import load_preset
from weightspace.spec import ExperimentSpec, UploadSpec
from weightspace_app.access import Principal
from weightspace_app.infra import idempotency, workers
from weightspace_app.infra.db import Experiment, Suite
from weightspace_app.infra.idempotency import Created
from weightspace_app.infra.settings import Settings
from weightspace_app.usecases import limits, uploads
from weightspace_app.usecases.experiments import new_experiment
from weightspace_app.usecases.suites import new_suite


def _nothing() -> None:
    return None


@dataclass(frozen=True)
class Submitter:
    """Who submits, to which queue, under which settings; ``wake`` tells the outbox relay that
    tasks are due (the API's maintenance thread; elsewhere the relay finds them on its own)."""

    principal: Principal
    queue: str
    settings: Settings
    idempotency_key: str | None = None
    wake: Callable[[], None] = field(default=_nothing, compare=False)


@dataclass(frozen=True)
class Submitted(Generic[Created]):
    """What a submission made (or, replayed under its ``Idempotency-Key``, found), whether it is
    new, and the warnings to answer with (no live worker consumes the queue)."""

    item: Created
    created: bool
    warnings: list[str]


def submit_experiment(
    session: Session, who: Submitter, spec: ExperimentSpec | UploadSpec
) -> Submitted[Experiment]:
    """A training experiment (queued) or an upload experiment (receiving snapshots)."""
    if isinstance(spec, UploadSpec):
        # nothing to train: no compute budget to check, no task to publish
        return _create(
            session,
            who,
            Experiment,
            spec.model_dump(mode="json"),
            [],
            lambda: uploads.new_experiment(who.principal, spec, who.queue),
        )
    return _create(
        session,
        who,
        Experiment,
        spec.model_dump(mode="json"),
        [spec],
        lambda: new_experiment(who.principal, spec, who.queue),
    )


def submit_suite(
    session: Session, who: Submitter, preset: str, dataset: str | None, seeds: int | None = None
) -> Submitted[Suite]:
    """The preset's experiments, once per seed, as one suite (data set errors name
    ``dataset``)."""
    replicates = seeds or load_preset(preset, dataset).seeds
    specs = [
        experiment.spec
        for replicate in range(replicates)
        for experiment in load_preset(preset, dataset, replicate).experiments
    ]
    request = {"preset": preset, "dataset": dataset, "seeds": seeds}
    return _create(
        session,
        who,
        Suite,
        request,
        specs,
        lambda: new_suite(who.principal, preset, dataset, who.queue, seeds),
        dataset_field="dataset",
    )


def _create(
    session: Session,
    who: Submitter,
    kind: type[Created],
    request: object,
    specs: Sequence[ExperimentSpec],
    build: Callable[[], Created],
    *,
    dataset_field: str | None = None,
) -> Submitted[Created]:
    """Insert what ``build`` makes, once per ``Idempotency-Key`` and ``request`` (with the
    queue), if ``specs`` pass the limits and a worker of the queue can load their data (else
    :class:`DatasetUnavailable`, naming ``dataset.name`` or ``dataset_field``)."""
    try:
        warnings = workers.admit_datasets(
            session, who.settings, [spec.dataset for spec in specs], who.queue
        )
    except DatasetUnavailable as error:
        if dataset_field is not None:
            error.field = dataset_field
        raise
    item, created = idempotency.create_once(
        session,
        who.principal,
        who.idempotency_key,
        {"request": request, "queue": who.queue},
        kind,
        build,
        admit=lambda: limits.admit(session, who.principal, who.settings, specs),
    )
    if created and specs:
        who.wake()
    return Submitted(item, created, warnings)

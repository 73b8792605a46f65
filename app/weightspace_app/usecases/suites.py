"""Use cases for suites: the paper's four experiments submitted from a preset, and their report.

The report is built by a worker job once every experiment of the suite has ended: the core's
reproduction assembly (``weightspace.reproduction``) evaluates the lines, barriers, controls and
claims per seed and summarises them; ``weightspace.report`` renders the files, stored here.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, selectinload, sessionmaker

from weightspace.claims import BarrierReport, ExperimentResult
from weightspace.data import Dataset, load_dataset
from weightspace.presets import load_preset
from weightspace.report import is_report_file, render_report
from weightspace.reproduction import assemble, evaluate_replicate
from weightspace.snapshots import ObjectStore
from weightspace.spec import DatasetSpec
from weightspace.vocabulary import TERMINAL, ReportStatus, Status
from weightspace_app.access import NotFound, Principal
from weightspace_app.infra import outbox
from weightspace_app.infra.db import Experiment, Suite, utcnow
from weightspace_app.infra.queue import REPORT_TASK
from weightspace_app.usecases.barriers import compute_barriers, result_of
from weightspace_app.usecases.experiments import get_owned, new_experiment


def report_key(suite_id: uuid.UUID, name: str) -> str:
    if not is_report_file(name):
        raise ValueError(f"not a report file name: {name!r}")
    return f"suites/{suite_id.hex}/report/{name}"


def new_suite(
    principal: Principal, preset: str, dataset: str | None, queue: str, seeds: int | None = None
) -> Suite:
    """The suite and its experiments (the preset's four, once per seed), not yet added to a
    session. Replicate k > 0 uses global seeds derived from the preset's and k; ``seeds``
    defaults to the preset's (quick: 3)."""
    loaded = load_preset(preset, dataset)
    seeds = seeds or loaded.seeds
    suite = Suite(
        id=uuid.uuid4(),
        owner=principal.id,
        preset=loaded.name,
        dataset=loaded.dataset,
        seeds=seeds,
        report_status="pending",
    )
    suite.experiments = [
        new_experiment(principal, experiment.spec, queue, role=experiment.role, replicate=replicate)
        for replicate in range(seeds)
        for experiment in load_preset(preset, dataset, replicate).experiments
    ]
    return suite


def get_suite(session: Session, principal: Principal, suite_id: uuid.UUID) -> Suite:
    return get_owned(session, principal, Suite, suite_id)


def list_suites(
    session: Session,
    principal: Principal,
    *,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> list[Suite]:
    """Newest first; ``after`` is the (created_at, id) of the last item of the previous page."""
    query = select(Suite).options(selectinload(Suite.experiments).selectinload(Experiment.runs))
    if not principal.admin:
        query = query.where(Suite.owner == principal.id)
    if after is not None:
        created, last_id = after
        query = query.where(
            (Suite.created_at < created) | ((Suite.created_at == created) & (Suite.id < last_id))
        )
    query = query.order_by(Suite.created_at.desc(), Suite.id.desc()).limit(limit)
    return list(session.scalars(query))


def suite_status(suite: Suite) -> Status:
    """queued until one runs; running until all have ended; then failed if any failed."""
    statuses = {e.status for e in suite.experiments}
    if statuses <= TERMINAL:
        return (
            "succeeded"
            if statuses == {"succeeded"}
            else ("cancelled" if "cancelled" in statuses else "failed")
        )
    return "queued" if statuses == {"queued"} else "running"


def enqueue_report(sessions: sessionmaker[Session], experiment_id: uuid.UUID) -> bool:
    """Once every experiment of ``experiment_id``'s suite has ended, claim its report (nobody
    else will) and add the report task to the outbox, in one transaction."""
    with sessions() as session:
        experiment = session.get(Experiment, experiment_id)
        if experiment is None or experiment.suite_id is None:
            return False
        suite = session.get_one(Suite, experiment.suite_id)
        if not {e.status for e in suite.experiments} <= TERMINAL:
            return False
        claimed = session.execute(
            update(Suite)
            .where(Suite.id == suite.id, Suite.report_status == "pending")
            .values(report_status="building", updated_at=utcnow())
        )
        if claimed.rowcount == 1:  # type: ignore[attr-defined]
            outbox.add(session, REPORT_TASK, [str(suite.id)], experiment.queue)
        session.commit()
        return bool(claimed.rowcount == 1)  # type: ignore[attr-defined]


def _meta(suite: Suite) -> dict[str, str]:
    started = [e.started_at for e in suite.experiments if e.started_at]
    finished = [e.finished_at for e in suite.experiments if e.finished_at]
    meta = {
        "preset": suite.preset,
        "dataset": suite.dataset,
        "suite": str(suite.id),
        "generated": datetime.now().astimezone().isoformat(timespec="seconds"),
    }
    if started and finished:
        meta["training wall time"] = f"{(max(finished) - min(started)).total_seconds():.1f} s"
    return meta


def build_report(
    sessions: sessionmaker[Session],
    store: ObjectStore,
    suite_id: uuid.UUID,
    *,
    device: str = "cpu",
    data_dir: Path | None = None,
    allow_download: bool = False,
) -> list[str]:
    """Render and store the suite's report (the caller has claimed it); return the file names.

    Per replicate (seed), the succeeded experiments become the core's results; the core's
    reproduction assembly evaluates lines, barriers (through the experiments' barrier cache),
    controls and claims, and summarises them over the seeds.
    """

    @cache
    def data_for(spec: DatasetSpec) -> Dataset:
        return load_dataset(spec, data_dir, allow_download=allow_download)

    def barriers_for(result: ExperimentResult) -> BarrierReport:
        return compute_barriers(
            sessions,
            store,
            ids[id(result)],
            device=device,
            data_dir=data_dir,
            allow_download=allow_download,
        )

    ids: dict[int, uuid.UUID] = {}
    try:
        with sessions() as session:
            suite = session.get_one(Suite, suite_id)
            titles: dict[str, str] = {
                e.role: e.title for e in load_preset(suite.preset, suite.dataset).experiments
            }
            by_seed: dict[int, dict[str, ExperimentResult | None]] = {}
            for experiment in suite.experiments:
                role = experiment.role or ""
                results = by_seed.setdefault(experiment.replicate or 0, {})
                if experiment.status != "succeeded":
                    results[role] = None
                    continue
                results[role] = result_of(session, store, experiment, titles.get(role, role))
                ids[id(results[role])] = experiment.id
            meta = _meta(suite)
        replicates = [
            evaluate_replicate(
                seed,
                by_seed[seed],
                lambda spec: data_for(spec.dataset),
                device=device,
                barriers_for=barriers_for,
            )
            for seed in sorted(by_seed)
        ]
        files = render_report(assemble(replicates, meta, device=device))
        for name, data in files.items():
            store.put(report_key(suite_id, name), data)
        claims = json.loads(files["claims.json"])["claims"]
        _set_report(sessions, suite_id, "ready", files=sorted(files), claims=claims)
        return sorted(files)
    except Exception as error:
        _set_report(sessions, suite_id, "failed", error=f"{type(error).__name__}: {error}")
        raise


def _set_report(
    sessions: sessionmaker[Session],
    suite_id: uuid.UUID,
    status: ReportStatus,
    *,
    files: list[str] | None = None,
    claims: list[dict[str, Any]] | None = None,
    error: str | None = None,
) -> None:
    with sessions() as session:
        suite = session.get_one(Suite, suite_id)
        suite.report_status, suite.report_files, suite.claims, suite.report_error = (
            status,
            files,
            claims,
            error,
        )
        session.commit()


def report_file(session: Session, store: ObjectStore, suite: Suite, name: str) -> bytes:
    if suite.report_status != "ready" or name not in (suite.report_files or []):
        raise NotFound(f"suite {suite.id} has no report file {name!r}")
    return store.get(report_key(suite.id, name))

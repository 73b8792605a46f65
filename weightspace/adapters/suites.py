"""Use cases for suites: the paper's four experiments submitted from a preset, and their report.

The report is built by a worker job once every experiment of the suite has ended: it evaluates
the model along the straight line from initialisation to solution (claim 2), renders the figures
and the claims table through the core (``weightspace.report``) and stores the files.
"""

from __future__ import annotations

import json
import platform
import uuid
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from weightspace.adapters import outbox
from weightspace.adapters.analyses import all_snapshots
from weightspace.adapters.db import Experiment, Suite, utcnow
from weightspace.adapters.experiments import (
    NotFound,
    Principal,
    get_owned,
    new_experiment,
)
from weightspace.adapters.queue import REPORT_TASK
from weightspace.claims import ExperimentResult, LineLoss
from weightspace.data import load_dataset
from weightspace.presets import load_preset
from weightspace.report import is_report_file, render_report
from weightspace.snapshots import ObjectStore, get_snapshot
from weightspace.spec import ExperimentSpec
from weightspace.training import loss_along_line
from weightspace.vocabulary import TERMINAL


def report_key(suite_id: uuid.UUID, name: str) -> str:
    if not is_report_file(name):
        raise ValueError(f"not a report file name: {name!r}")
    return f"suites/{suite_id.hex}/report/{name}"


def new_suite(principal: Principal, preset: str, dataset: str | None, queue: str) -> Suite:
    """The suite and its four experiments, not yet added to a session."""
    loaded = load_preset(preset, dataset)
    suite = Suite(
        id=uuid.uuid4(),
        owner=principal.id,
        preset=loaded.name,
        dataset=loaded.dataset,
        report_status="pending",
    )
    suite.experiments = [
        new_experiment(principal, experiment.spec, queue, role=experiment.role)
        for experiment in loaded.experiments
    ]
    return suite


def create_suite(
    session: Session, principal: Principal, preset: str, dataset: str | None, queue: str
) -> Suite:
    """The suite, its four experiments and their tasks' outbox entries, committed together."""
    suite = new_suite(principal, preset, dataset, queue)
    session.add(suite)
    outbox.add_trainings(session, suite)  # in the same transaction: all or nothing
    session.commit()
    return suite


def get_suite(session: Session, principal: Principal, suite_id: uuid.UUID) -> Suite:
    return get_owned(session, principal, Suite, suite_id)


def suite_status(suite: Suite) -> str:
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


def _meta(suite: Suite, device: str) -> dict[str, str]:
    import torch

    started = [e.started_at for e in suite.experiments if e.started_at]
    finished = [e.finished_at for e in suite.experiments if e.finished_at]
    hardware = (
        torch.cuda.get_device_name(0)
        if device.startswith("cuda")
        else (platform.processor() or platform.machine())
    )
    meta = {
        "preset": suite.preset,
        "dataset": suite.dataset,
        "suite": str(suite.id),
        "hardware": f"{hardware} ({device}; {torch.get_num_threads()} CPU threads)",
        "software": f"Python {platform.python_version()}, torch {torch.__version__}, numpy {np.__version__}",
        "generated": datetime.now().astimezone().isoformat(timespec="seconds"),
    }
    if started and finished:
        meta["training wall time"] = f"{(max(finished) - min(started)).total_seconds():.1f} s"
    return meta


def _line_loss(
    store: ObjectStore,
    result: ExperimentResult,
    records: Iterable[Any],
    device: str,
    data_dir: Path | None,
    allow_download: bool,
) -> LineLoss:
    run0 = [r for r in records if r.run == 0]
    start = get_snapshot(store, run0[0].key, run0[0].sha256).params
    end = get_snapshot(store, run0[-1].key, run0[-1].sha256).params
    data = load_dataset(result.spec.dataset, data_dir, allow_download=allow_download)
    alphas, losses = loss_along_line(result.spec, data, start, end, device=device)
    return LineLoss(alphas, losses)


def build_report(
    sessions: sessionmaker[Session],
    store: ObjectStore,
    suite_id: uuid.UUID,
    *,
    device: str = "cpu",
    data_dir: Path | None = None,
    allow_download: bool = False,
) -> list[str]:
    """Render and store the suite's report (the caller has claimed it); return the file names."""
    try:
        with sessions() as session:
            suite = session.get_one(Suite, suite_id)
            titles: dict[str, str] = {
                e.role: e.title for e in load_preset(suite.preset, suite.dataset).experiments
            }
            results: dict[str, ExperimentResult | None] = {}
            line = None
            for experiment in suite.experiments:
                role = experiment.role or ""
                if experiment.status != "succeeded":
                    results[role] = None
                    continue
                records, gram = all_snapshots(session, store, experiment)
                result = ExperimentResult(
                    role=role,
                    title=titles.get(role, role),
                    spec=ExperimentSpec.model_validate(experiment.spec),
                    runs=[r.run for r in records],
                    epochs=[r.epoch for r in records],
                    metrics=[r.metrics for r in records],
                    gram=gram,
                )
                results[role] = result
                if role == "trajectory":
                    line = _line_loss(store, result, records, device, data_dir, allow_download)
            files = render_report(results, line, meta=_meta(suite, device))
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
    status: str,
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

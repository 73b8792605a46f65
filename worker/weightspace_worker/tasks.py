"""Celery tasks: thin adapters that pass ids to the use cases."""

from __future__ import annotations

import uuid
from functools import cache
from typing import Any

from celery import Task
from sqlalchemy.orm import Session, sessionmaker

from weightspace.adapters import experiments, logs, suites
from weightspace.adapters.db import Experiment, make_engine, make_sessionmaker
from weightspace.adapters.queue import REPORT_TASK, TRAIN_TASK
from weightspace.adapters.storage import store_for
from weightspace.snapshots import ObjectStore
from weightspace_worker.celery_app import app, settings


@cache
def _resources() -> tuple[sessionmaker[Session], ObjectStore]:
    # Created lazily in the process that runs tasks (after any fork), once. The worker writes
    # snapshots, so it creates the bucket if missing.
    sessions = make_sessionmaker(make_engine(settings.database_url))
    return sessions, store_for(settings, create_bucket=True)


def _job_options(task: Task) -> dict[str, Any]:
    """Device and data location for a job. CPU-queue tasks never touch CUDA: they may run in
    forked pool children."""
    queue = (task.request.delivery_info or {}).get("routing_key")
    device = "cpu" if queue == "cpu" else settings.resolved_device()
    return {
        "device": device,
        "data_dir": settings.data_dir,
        "allow_download": settings.allow_download,
    }


@app.task(name=TRAIN_TASK, bind=True)
def train_experiment(self: Task, experiment_id: str) -> str:
    """Train one experiment to the end (or resume it after a lost worker)."""
    sessions, store = _resources()
    try:
        with logs.context(experiment_id=experiment_id):
            return experiments.execute(
                sessions,
                store,
                uuid.UUID(experiment_id),
                **_job_options(self),
            )
    finally:
        with sessions() as session:
            experiment = session.get(Experiment, uuid.UUID(experiment_id))
            suite_id, queue = (
                (experiment.suite_id, experiment.queue) if experiment else (None, None)
            )
        if suite_id is not None and suites.claim_report(sessions, suite_id):
            build_report.apply_async(args=[str(suite_id)], queue=queue)


@app.task(name=REPORT_TASK, bind=True)
def build_report(self: Task, suite_id: str) -> list[str]:
    """Evaluate, render and store a finished suite's report (figures and claims)."""
    sessions, store = _resources()
    with logs.context(suite_id=suite_id):
        return suites.build_report(
            sessions,
            store,
            uuid.UUID(suite_id),
            **_job_options(self),
        )

"""Celery tasks: thin adapters that pass ids to the use cases."""

from __future__ import annotations

import uuid
from functools import cache
from typing import Any

from celery import Task
from celery.signals import worker_shutting_down
from sqlalchemy.orm import Session, sessionmaker
from weightspace_app.infra import faults, logs
from weightspace_app.infra.db import make_engine, make_sessionmaker
from weightspace_app.infra.queue import (
    BARRIERS_TASK,
    GRAM_SHARD_TASK,
    GRAM_TASK,
    JOINT_BARRIERS_TASK,
    LANDSCAPE_TASK,
    REPORT_TASK,
    TRAIN_TASK,
    VERIFY_TASK,
)
from weightspace_app.infra.storage import store_for
from weightspace_app.usecases import (
    barriers,
    execution,
    joint_barriers,
    landscapes,
    sharded,
    suites,
    verifications,
)

from weightspace.snapshots import ObjectStore
from weightspace.vocabulary import TERMINAL
from weightspace_worker.celery_app import app, settings


@worker_shutting_down.connect
def _stop_training(**_: object) -> None:
    """SIGTERM: let the running training hand its runs back at its next check."""
    execution.STOPPING.set()


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


@app.task(name=TRAIN_TASK, bind=True, max_retries=None)
def train_experiment(self: Task, experiment_id: str) -> str:
    """Train one experiment to the end (or resume it after a lost worker or a transient fault)."""
    sessions, store = _resources()
    with logs.context(experiment_id=experiment_id):
        try:
            status = execution.execute(
                sessions,
                store,
                uuid.UUID(experiment_id),
                lease_seconds=settings.lease_seconds,
                **_job_options(self),
            )
        except faults.Transient as error:
            attempt = self.request.retries
            if attempt < settings.retry_attempts:
                delay = faults.backoff(attempt, settings.retry_base, settings.retry_max)
                raise self.retry(countdown=delay, exc=error) from error
            message = f"gave up after {attempt + 1} attempts: {error}"
            execution.finish(sessions, uuid.UUID(experiment_id), "failed", message)
            status = "failed"
        except Exception:  # failed for good (execute recorded why): its suite may be done
            suites.enqueue_report(sessions, uuid.UUID(experiment_id))
            raise
        if status in TERMINAL:
            suites.enqueue_report(sessions, uuid.UUID(experiment_id))
        return status


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


@app.task(name=BARRIERS_TASK, bind=True)
def compute_barriers(self: Task, experiment_id: str) -> int:
    """Compute and cache the loss barriers between an experiment's final solutions."""
    sessions, store = _resources()
    with logs.context(experiment_id=experiment_id):
        report = barriers.compute_barriers(
            sessions, store, uuid.UUID(experiment_id), **_job_options(self)
        )
    return len(report.lines)


@app.task(name=LANDSCAPE_TASK, bind=True)
def compute_landscape(
    self: Task, experiment_id: str, run: int, resolution: int, margin: float, normalisation: str
) -> int:
    """Compute and cache the loss on a grid over the PC1-PC2 plane of one run's trajectory."""
    sessions, store = _resources()
    options = landscapes.Options(run, resolution, margin, normalisation)  # type: ignore[arg-type]
    with logs.context(experiment_id=experiment_id):
        document = landscapes.compute_job(
            sessions, store, uuid.UUID(experiment_id), options, **_job_options(self)
        )
    return len(document["alphas"])


@app.task(name=JOINT_BARRIERS_TASK, bind=True)
def compute_joint_barriers(self: Task, analysis_id: str) -> int:
    """Compute and cache the barriers between snapshots selected from several experiments."""
    sessions, store = _resources()
    document = joint_barriers.compute(sessions, store, uuid.UUID(analysis_id), **_job_options(self))
    return len(document["lines"])


@app.task(name=VERIFY_TASK, bind=True)
def verify_experiment(self: Task, experiment_id: str, run: int | None, epoch: int | None) -> str:
    """Replay an experiment's runs and compare them with its stored snapshots, bit for bit."""
    sessions, store = _resources()
    request = verifications.Request(run, epoch)
    with logs.context(experiment_id=experiment_id):
        document = verifications.compute_job(
            sessions, store, uuid.UUID(experiment_id), request, **_job_options(self)
        )
    return str(document["verdict"])


def _queue(task: Task) -> str:
    return str((task.request.delivery_info or {}).get("routing_key") or settings.default_queue)


def _retry_or_fail(task: Task, key: str, error: Exception) -> None:
    """A transient fault retries the task (with backoff); any other fails the job, named."""
    attempt = task.request.retries
    if faults.is_transient(error) and attempt < settings.retry_attempts:
        delay = faults.backoff(attempt, settings.retry_base, settings.retry_max)
        raise task.retry(countdown=delay, exc=error) from error
    sessions, _ = _resources()
    sharded.fail(sessions, key, faults.describe(error))
    raise error


@app.task(name=GRAM_TASK, bind=True, max_retries=None)
def compute_gram(self: Task, subject: str, key: str) -> int:
    """Plan a sharded Gram: one shard task per range of parameters not computed yet."""
    sessions, store = _resources()
    queue = _queue(self)

    def send(shard: tuple[int, int], size: int) -> None:
        args = [subject, key, shard[0], shard[1], size, settings.gram_shard_parameters]
        app.send_task(GRAM_SHARD_TASK, args=args, queue=queue)

    try:
        return sharded.plan(sessions, store, subject, key, settings.gram_shard_parameters, send)
    except Exception as error:
        _retry_or_fail(self, key, error)
        raise


@app.task(name=GRAM_SHARD_TASK, bind=True, max_retries=None)
def compute_gram_shard(
    self: Task, subject: str, key: str, start: int, stop: int, size: int, per_shard: int
) -> bool:
    """The partial Gram of one shard of parameters; the last shard done sums them all."""
    sessions, store = _resources()
    try:
        return sharded.compute_shard(
            sessions,
            store,
            subject,
            key,
            (start, stop),
            size,
            per_shard,
            settings.gram_shard_delay,
        )
    except Exception as error:
        _retry_or_fail(self, key, error)
        raise

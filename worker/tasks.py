"""Celery tasks: thin adapters that pass ids to the use cases."""

from __future__ import annotations

import uuid
from functools import cache

from celery import Task

from weightspace.adapters import experiments
from weightspace.adapters.db import make_engine, make_sessionmaker
from weightspace.adapters.queue import TRAIN_TASK
from weightspace.adapters.storage import store_for
from worker.celery_app import app, settings


@cache
def _resources():  # type: ignore[no-untyped-def]
    # Created lazily in the process that runs tasks (after any fork), once.
    sessions = make_sessionmaker(make_engine(settings.database_url))
    store = store_for(settings, create_bucket=True)  # the worker writes: it creates the bucket
    return sessions, store


@app.task(name=TRAIN_TASK, bind=True)
def train_experiment(self: Task, experiment_id: str) -> str:
    """Train one experiment to the end (or resume it after a lost worker)."""
    sessions, store = _resources()
    queue = (self.request.delivery_info or {}).get("routing_key")
    # CPU-queue tasks never touch CUDA (they may run in forked pool children).
    device = "cpu" if queue == "cpu" else settings.resolved_device()
    return experiments.execute(
        sessions,
        store,
        uuid.UUID(experiment_id),
        device=device,
        data_dir=settings.data_dir,
        allow_download=settings.allow_download,
    )

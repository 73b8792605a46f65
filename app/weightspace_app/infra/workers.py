"""The worker registry, and the submit-time check of a spec's data set against it.

Every Celery worker advertises itself (:func:`advertise`) when it is ready and then every third
of ``WEIGHTSPACE_WORKER_TTL``: its Celery hostname, the queues it consumes, its device, its torch
version and the data sets it can load with their sizes (``weightspace.data.servable_sizes``, the
files verified against their sha256 once at start). An entry whose last heartbeat is older than
the TTL is gone (a clean shutdown removes it at once). The registry is a table (``workers``) in
the database every process already shares, PostgreSQL in deployment and SQLite in the embedded
mode, rather than in Redis, which only some deployments run (as one broker option among AMQP
and the embedded SQLite transport).

:func:`check_datasets` is the one decision a submission passes (``POST /experiments``,
``POST /suites``):

- live workers consume the target queue: one of them must be able to load the spec's data set
  with as many examples as it asks for, else 422 naming ``dataset.name`` (or
  ``dataset.train_size`` / ``dataset.test_size``);
- none does (``queue=gpu`` with no GPU worker, or no worker started yet): the experiment is
  accepted (202) with a warning that it waits until such a worker appears; the API process's own
  data directory then stands in for the worker to come (in the embedded mode and docker-compose
  they share it), so data that the API cannot find either is still a 422.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from weightspace.data import DatasetUnavailable, check_available, servable_sizes, unservable
from weightspace.spec import DatasetSpec
from weightspace.vocabulary import describe
from weightspace_app.infra.db import WorkerRecord, utcnow
from weightspace_app.infra.settings import Settings


@dataclass(frozen=True)
class Advert:
    """What one worker says about itself."""

    id: str
    queues: tuple[str, ...]
    device: str  # "cpu" or "cuda"
    device_name: str
    torch_version: str
    datasets: dict[str, tuple[int, int]]  # name -> examples (train, test)
    started_at: datetime = field(default_factory=utcnow)
    seen_at: datetime | None = None

    @classmethod
    def of(cls, row: WorkerRecord) -> Advert:
        return cls(
            row.id,
            tuple(row.queues),
            row.device,
            row.device_name,
            row.torch_version,
            {name: (int(train), int(test)) for name, (train, test) in row.datasets.items()},
            row.started_at,
            row.seen_at,
        )


def describe_worker(worker_id: str, queues: Sequence[str], settings: Settings) -> Advert:
    """This process's advertisement. CUDA is looked at only for a worker of the ``gpu`` queue
    (which runs a solo or threads pool); ``cpu`` tasks never touch it. Reads and verifies the
    IDX files it finds (a second or so)."""
    import torch

    device, name = "cpu", platform.processor() or platform.machine() or "cpu"
    if "gpu" in queues and settings.resolved_device().startswith("cuda"):
        device, name = "cuda", torch.cuda.get_device_name(torch.device(settings.resolved_device()))
    sizes = servable_sizes(settings.data_dir, allow_download=settings.allow_download, verify=True)
    return Advert(worker_id, tuple(queues), device, name, torch.__version__, sizes)


def advertise(
    sessions: sessionmaker[Session], advert: Advert, *, now: datetime | None = None
) -> None:
    """Insert or renew the worker's entry (seen now) and drop entries past any TTL's use."""
    now = now or utcnow()
    with sessions() as session:
        session.merge(
            WorkerRecord(
                id=advert.id,
                queues=list(advert.queues),
                device=advert.device,
                device_name=advert.device_name,
                torch_version=advert.torch_version,
                datasets={k: list(v) for k, v in advert.datasets.items()},
                started_at=advert.started_at,
                seen_at=now,
            )
        )
        # Entries a day stale: their workers are long gone (listing filters by the TTL anyway).
        session.execute(delete(WorkerRecord).where(WorkerRecord.seen_at < now - timedelta(days=1)))
        session.commit()


def retire(sessions: sessionmaker[Session], worker_id: str) -> None:
    """Remove the worker's entry (a clean shutdown)."""
    with sessions() as session:
        session.execute(delete(WorkerRecord).where(WorkerRecord.id == worker_id))
        session.commit()


def live_workers(session: Session, ttl: float, *, now: datetime | None = None) -> list[Advert]:
    """Workers whose last heartbeat is at most ``ttl`` seconds old, by id."""
    since = (now or utcnow()) - timedelta(seconds=ttl)
    rows = session.scalars(
        select(WorkerRecord).where(WorkerRecord.seen_at >= since).order_by(WorkerRecord.id)
    )
    return [Advert.of(row) for row in rows]


def waiting_warning(queue: str) -> str:
    return (
        f"no live worker consumes queue `{queue}`: the experiment stays queued until one "
        "starts (GET /workers lists the live workers)"
    )


def check_datasets(
    specs: Sequence[DatasetSpec],
    queue: str,
    live: Sequence[Advert],
    local: Callable[[DatasetSpec], None],
) -> list[str]:
    """The decision of the module docstring: raise :class:`DatasetUnavailable` naming the spec's
    field, or return the warnings to answer with (``local`` checks a spec against the API
    process's own data, raising the same)."""
    serving = [w for w in live if queue in w.queues]
    if not serving:
        for spec in specs:
            local(spec)
        return [waiting_warning(queue)] if specs else []
    names = ", ".join(w.id for w in serving)
    for spec in specs:
        problems = [unservable(spec, w.datasets, f" on worker {w.id}") for w in serving]
        missed = [p for p in problems if p is not None]
        if len(missed) < len(problems):
            continue
        # The closest miss: a worker that has the data set but too few examples, if any.
        too_small = [p for p in missed if p.field != "dataset.name"]
        if too_small:
            raise too_small[0]
        available = sorted({d for w in serving for d in w.datasets})
        raise DatasetUnavailable(
            "dataset.name",
            f"no live worker of queue `{queue}` ({names}) can load {spec.name}; they have "
            f"{describe(tuple(available))}. Start a worker whose WEIGHTSPACE_DATA_DIR holds "
            f"{spec.name}, or choose another data set",
        )
    return []


def admit_datasets(
    session: Session, settings: Settings, specs: Sequence[DatasetSpec], queue: str
) -> list[str]:
    """:func:`check_datasets` against the live workers and the API process's data directory."""

    def local(spec: DatasetSpec) -> None:
        check_available(spec, settings.data_dir, allow_download=settings.allow_download)

    return check_datasets(specs, queue, live_workers(session, settings.worker_ttl), local)

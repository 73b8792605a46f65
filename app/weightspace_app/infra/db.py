"""Database tables (SQLAlchemy 2.0) for experiments, runs, snapshots and cached analysis.

PostgreSQL in deployment, SQLite for the embedded default. The schema is created by the Alembic
migrations in ``migrations/``; ``metadata`` here is what they are written against.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    Uuid,
    create_engine,
    event,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    mapped_column,
    relationship,
    sessionmaker,
)
from sqlalchemy.types import TypeDecorator

from weightspace.vocabulary import (
    JOB_STATUSES,
    REPORT_STATUSES,
    SOURCES,
    STATUSES,
    JobStatus,
    ReportStatus,
    Source,
    Status,
)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """``DateTime(timezone=True)`` that always reads back aware UTC (SQLite stores none)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def one_of(column: str, values: Iterable[str]) -> CheckConstraint:
    """A CHECK that ``column`` holds one of ``values`` (named ``ck_<table>_<column>``)."""
    listed = ", ".join(f"'{value}'" for value in values)
    return CheckConstraint(f"{column} IN ({listed})", name=column)


class Suite(Base):
    """The paper's experiments submitted together from a preset, and their report."""

    __tablename__ = "suites"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    owner: Mapped[str] = mapped_column(String(200), index=True)
    preset: Mapped[str] = mapped_column(String(50))
    dataset: Mapped[str] = mapped_column(String(50))
    seeds: Mapped[int] = mapped_column(Integer, default=1, server_default="1")  # replicates
    report_status: Mapped[ReportStatus] = mapped_column(String(20), default="pending")
    report_error: Mapped[str | None] = mapped_column(Text)
    report_files: Mapped[list[str] | None] = mapped_column(JSON)
    claims: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    # Deleting a suite deletes its experiments (all or nothing, like its submission).
    experiments: Mapped[list[Experiment]] = relationship(
        back_populates="suite",
        order_by="Experiment.created_at",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )

    __table_args__ = (one_of("report_status", REPORT_STATUSES),)


class Experiment(Base):
    __tablename__ = "experiments"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    owner: Mapped[str] = mapped_column(String(200), index=True)
    name: Mapped[str | None] = mapped_column(String(200))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    queue: Mapped[str] = mapped_column(String(50))
    status: Mapped[Status] = mapped_column(String(20), default="queued")
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    suite_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("suites.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str | None] = mapped_column(String(40))  # the preset's name for it in its suite
    replicate: Mapped[int | None] = mapped_column(Integer)  # its seed index in its suite
    # "train": the service trains it from ``spec``; "upload": its snapshots are uploaded.
    source: Mapped[Source] = mapped_column(String(20), default="train", server_default="train")
    # Parameter layout (weightspace.imports.Layout.to_json) of uploaded snapshots, fixed by the
    # first upload; every later one must match it.
    layout: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    layout_sha256: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)  # the owner's words on it (PATCH)

    suite: Mapped[Suite | None] = relationship(back_populates="experiments")
    tag_rows: Mapped[list[ExperimentTag]] = relationship(
        order_by="ExperimentTag.tag",
        cascade="all, delete-orphan",
        passive_deletes=True,
        lazy="selectin",
    )
    runs: Mapped[list[Run]] = relationship(
        back_populates="experiment",
        order_by="Run.run",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )

    __table_args__ = (
        Index("ix_experiments_owner_created", "owner", "created_at", "id"),
        one_of("status", STATUSES),
        one_of("source", SOURCES),
    )

    @property
    def tags(self) -> list[str]:
        return [row.tag for row in self.tag_rows]


class ExperimentTag(Base):
    """One tag of an experiment (a row each, so that lists filter by tag on any database)."""

    __tablename__ = "experiment_tags"

    experiment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)


class Run(Base):
    __tablename__ = "runs"

    experiment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True
    )
    run: Mapped[int] = mapped_column(Integer, primary_key=True)
    init_seed: Mapped[int | None] = mapped_column(BigInteger)  # None for uploaded runs
    data_seed: Mapped[int | None] = mapped_column(BigInteger)
    pretrain_seed: Mapped[int | None] = mapped_column(BigInteger)
    dropout_seed: Mapped[int | None] = mapped_column(BigInteger)  # null: from before the split
    pretrain_dropout_seed: Mapped[int | None] = mapped_column(BigInteger)
    # What the numbers were computed with (weightspace.determinism.environment), at the latest snapshot
    environment: Mapped[dict[str, str] | None] = mapped_column(JSON)
    status: Mapped[Status] = mapped_column(String(20), default="queued")
    epoch: Mapped[int | None] = mapped_column(Integer)  # latest completed epoch
    final_epoch: Mapped[int | None] = mapped_column(Integer)  # None for uploaded runs
    train_loss: Mapped[float | None] = mapped_column(
        Float
    )  # mean minibatch loss of the latest epoch
    metrics: Mapped[dict[str, float] | None] = mapped_column(JSON)  # at the latest snapshot
    state_key: Mapped[str | None] = mapped_column(String(300))  # latest resume state
    state_epoch: Mapped[int | None] = mapped_column(Integer)
    # Who trains the run, until when (renewed by the worker's heartbeat; see weightspace_app.infra.leases).
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    experiment: Mapped[Experiment] = relationship(back_populates="runs")

    __table_args__ = (one_of("status", STATUSES),)


class SnapshotRecord(Base):
    __tablename__ = "snapshots"

    experiment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True
    )
    run: Mapped[int] = mapped_column(Integer, primary_key=True)
    epoch: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(300))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    parameters: Mapped[int] = mapped_column(Integer)
    metrics: Mapped[dict[str, float]] = mapped_column(JSON)
    # Full-batch gradient norms at the snapshot and their sign-flip null
    # (weightspace.landscape.GradientNorms.to_dict()); null for snapshots captured before them.
    gradient: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Why the stored object is unusable (missing, checksum mismatch), once a reader found out.
    damaged: Mapped[str | None] = mapped_column(Text)


class ApiToken(Base):
    """A bearer token: only its sha256 is stored; it acts for ``owner`` (all owners if admin)."""

    __tablename__ = "api_tokens"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    owner: Mapped[str] = mapped_column(String(200), index=True)
    admin: Mapped[bool] = mapped_column(Boolean, default=False)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    label: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class IdempotencyKey(Base):
    """An ``Idempotency-Key`` an owner submitted with, and what it created (rows cascade)."""

    __tablename__ = "idempotency_keys"

    owner: Mapped[str] = mapped_column(String(200), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))  # sha256 of the canonical request
    experiment_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE"), index=True
    )
    suite_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("suites.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RateWindow(Base):
    """Requests counted per subject (a token) in fixed windows, shared by every API process."""

    __tablename__ = "rate_windows"

    subject: Mapped[str] = mapped_column(String(200), primary_key=True)
    window: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # start, in epoch seconds
    count: Mapped[int] = mapped_column(Integer)


class OutboxEntry(Base):
    """A task to publish, written in the transaction that makes it due (see weightspace_app.infra.outbox)."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    task: Mapped[str] = mapped_column(String(100))
    args: Mapped[list[Any]] = mapped_column(JSON)
    queue: Mapped[str] = mapped_column(String(50))
    experiment_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)


class WorkerRecord(Base):
    """A Celery worker's advertisement, renewed by its heartbeat (see weightspace_app.infra.workers)."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)  # Celery hostname
    queues: Mapped[list[str]] = mapped_column(JSON)
    device: Mapped[str] = mapped_column(String(20))  # "cpu" or "cuda"
    device_name: Mapped[str] = mapped_column(String(200))
    torch_version: Mapped[str] = mapped_column(String(50))
    # Data set -> [train, test] examples it can load.
    datasets: Mapped[dict[str, list[int]]] = mapped_column(JSON)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class CachedJob(Base):
    """A worker job whose result is cached in the object store (see weightspace_app.usecases.jobs): one row per
    distinct request, queued by the first request, then ready or failed."""

    __tablename__ = "cached_jobs"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    owner: Mapped[str] = mapped_column(String(200), index=True)
    # The experiment it reads, if one: deleting the experiment deletes the row.
    experiment_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[JobStatus] = mapped_column(String(20))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (one_of("status", JOB_STATUSES),)


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets foreign keys, WAL and a busy timeout (API + worker share it)."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(connection: Any, _record: Any) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)

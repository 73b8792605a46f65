"""Deployment settings, read from ``WEIGHTSPACE_*`` environment variables.

The defaults are the embedded mode: a SQLite file, a local snapshot directory and a broker
that needs no server (kombu's SQLAlchemy transport on a second SQLite file), all under
``WEIGHTSPACE_HOME`` (default ``./var``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from weightspace.vocabulary import Queue


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WEIGHTSPACE_", extra="ignore", frozen=True)

    home: Path = Field(default=Path("var"), description="Root of the embedded mode's files.")
    database_url: str = ""  # default: sqlite:///<home>/weightspace.db
    broker_url: str = ""  # default: sqla+sqlite:///<home>/broker.db
    storage_url: str = ""  # default: file://<home>/snapshots
    data_dir: Path | None = None  # where IDX files are (see weightspace.data)
    allow_download: bool = False
    s3_endpoint_url: str | None = None
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    s3_region: str | None = None
    default_queue: Queue = "cpu"
    device: str = "auto"  # "auto", "cpu", "cuda", "cuda:1", ...
    # Longer than the longest run: a task not acknowledged within it is delivered again.
    visibility_timeout: int = 7 * 24 * 3600
    auth: Literal["none", "tokens"] = Field(
        default="none",
        description="`tokens`: every route but /health needs `Authorization: Bearer <token>` "
        "(the image and docker-compose set it); `none`: one anonymous owner, for the embedded "
        "mode on 127.0.0.1.",
    )
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default=[],
        description="Host header values served (comma-separated; `*` any); empty: any. "
        "`python -m weightspace_service` on a loopback interface with auth=none sets the "
        "loopback names, against DNS rebinding.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"  # json: one object per line, for collectors
    # Limits (README "Limits"): each refusal is a 4xx problem naming the setting.
    max_example_epochs: int = Field(
        default=2_000_000_000,
        ge=1,
        description="Per experiment: replicas x (pretrain_epochs + epochs) x training examples.",
    )
    max_parameters: int = Field(
        default=20_000_000, ge=1, description="Per experiment: parameters of the model."
    )
    max_active_experiments: int = Field(
        default=50, ge=1, description="Per owner: experiments queued or running at once (429)."
    )
    max_stored_bytes: int = Field(
        default=100 * 2**30,
        ge=1,
        description="Per owner: bytes of stored snapshots, with the new experiment's (429).",
    )
    submit_rate: int = Field(
        default=60,
        ge=1,
        description="Per token: submissions (and retries) per rate window (429, Retry-After).",
    )
    submit_rate_window: int = Field(
        default=60, ge=1, le=86_400, description="Seconds of the submission rate window."
    )
    max_body_bytes: int = Field(
        default=1 << 20, ge=1024, description="Largest request body accepted (413 above)."
    )
    # Leases: a worker renews its runs' lease every lease_seconds / 3; the reaper (every
    # reaper_interval seconds) re-enqueues experiments whose lease ran out (a dead worker), and
    # queued ones whose task was published requeue_after seconds ago and never picked up.
    lease_seconds: float = Field(default=30.0, gt=0)
    reaper_interval: float = Field(default=5.0, gt=0)
    requeue_after: float = Field(default=600.0, gt=0)
    # The outbox relay publishes due tasks every relay_interval seconds (and at once after a
    # submission), giving up on a publish after publish_timeout seconds (a black-holed broker).
    relay_interval: float = Field(default=2.0, gt=0)
    publish_timeout: float = Field(default=5.0, gt=0)
    worker_ttl: float = Field(
        default=30.0,
        gt=0,
        description="Seconds after its last heartbeat (one every third of this) that a worker "
        "counts as gone: GET /workers and the submit-time data-set check see live ones only.",
    )
    # Transient faults (database, store) in the worker: retried with exponential backoff from
    # retry_base seconds up to retry_max, at most retry_attempts times, then named as failed.
    retry_base: float = Field(default=1.0, gt=0)
    retry_max: float = Field(default=60.0, gt=0)
    retry_attempts: int = Field(default=20, ge=0)
    # /ready: checks run concurrently within ready_deadline seconds, cached ready_cache_seconds;
    # a local store with less than store_min_free_bytes free is not ready.
    ready_deadline: float = Field(default=3.0, gt=0)
    ready_cache_seconds: float = Field(default=1.5, ge=0)
    store_min_free_bytes: int = Field(default=256 << 20, ge=0)
    # Analyses in the API process: a bounded pool, one BLAS thread each, recent Grams in memory.
    analysis_workers: int = Field(default=2, ge=1, le=64)
    analysis_blas_threads: int = Field(default=1, ge=1, le=64)
    analysis_memory_bytes: int = Field(default=256 << 20, ge=0)
    # Analyses past one process: a Gram over more snapshot bytes than inline_analysis_max_bytes
    # (and not cached yet) is computed by worker jobs, one per shard of gram_shard_parameters
    # parameters, summed by a last step; the analysis answers 202 + Location meanwhile.
    inline_analysis_max_bytes: int = Field(
        default=256 << 20,
        ge=0,
        description="Snapshot bytes an analysis (PCA, distances, trajectory, POST /analyses) "
        "may read inside the API; a larger one whose Gram is not cached is computed by "
        "workers, sharded over parameters (202 + Location while they do).",
    )
    gram_shard_parameters: int = Field(
        default=4_000_000,
        ge=1,
        description="Parameters per shard of a Gram computed by workers (one task each).",
    )
    gram_shard_delay: float = Field(
        default=0.0,
        ge=0,
        description="For tests only: seconds each shard task waits before it computes.",
    )
    max_upload_bytes: int = Field(
        default=8 << 30,
        ge=1,
        description="Largest snapshot upload (PUT .../snapshots/{epoch}) in bytes (413 above); "
        "the default takes 1B float32 or float64 parameters.",
    )
    upload_chunk_bytes: int = Field(
        default=8 << 20,
        ge=4096,
        description="Bytes an upload is read, checked and written in at a time: the API's "
        "memory per upload is a few of these, whatever the snapshot's size.",
    )

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            return [h.strip().lower() for h in value.split(",") if h.strip()]
        return value

    @model_validator(mode="after")
    def _embedded_defaults(self) -> Settings:
        home = self.home.resolve()
        defaults = {
            "database_url": f"sqlite:///{home / 'weightspace.db'}",
            "broker_url": f"sqla+sqlite:///{home / 'broker.db'}",
            "storage_url": f"file://{home / 'snapshots'}",
        }
        for name, value in defaults.items():
            if not getattr(self, name):
                object.__setattr__(self, name, value)
        return self

    @property
    def embedded(self) -> bool:
        return self.database_url.startswith("sqlite")

    def prepare_home(self) -> None:
        """Create the embedded mode's directory if any default points into it."""
        if any(
            u.startswith(("sqlite", "sqla+sqlite", "file://"))
            for u in (self.database_url, self.broker_url, self.storage_url)
        ):
            self.home.resolve().mkdir(parents=True, exist_ok=True)

    def configure_logging(self) -> None:
        """The one logging configuration of the API and the worker (weightspace_app.infra.logs)."""
        from weightspace_app.infra.logs import configure

        configure(self.log_level, self.log_format)

    def resolved_device(self) -> str:
        if self.device != "auto":
            return self.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"

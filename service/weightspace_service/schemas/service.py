"""Response bodies about the service itself: health, readiness and the live workers.

None refers to an experiment; they describe the process and what it depends on.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class Health(BaseModel):
    status: Literal["ok"] = Field(description="The process answers.")


class Readiness(BaseModel):
    status: Literal["ready", "unavailable"] = Field(
        description="`ready` when every dependency answers (else with HTTP 503)."
    )
    checks: dict[str, str] = Field(
        description="`ok`, or the error, per dependency: database, broker, store."
    )


class WorkerOut(BaseModel):
    """A live worker, as it advertised itself at its last heartbeat."""

    id: str = Field(description="Celery hostname, e.g. `celery@gpu-node-1`.")
    queues: list[str] = Field(description="Queues it consumes.")
    device: Literal["cpu", "cuda"] = Field(description="Where its `gpu`-queue tasks train.")
    device_name: str = Field(description="GPU name, or the CPU's.")
    torch_version: str = Field(description="`torch.__version__` of the worker.")
    datasets: dict[str, list[int]] = Field(
        description="Data sets it can load: name -> [training, test] examples.",
        examples=[{"digits": [1347, 450], "mnist": [60000, 10000]}],
    )
    started_at: datetime
    seen_at: datetime = Field(description="Its last heartbeat.")


class WorkerList(BaseModel):
    items: list[WorkerOut] = Field(description="Live workers, by id.")
    ttl_seconds: float = Field(
        description="A worker is listed while its last heartbeat is this recent "
        "(`WEIGHTSPACE_WORKER_TTL`)."
    )

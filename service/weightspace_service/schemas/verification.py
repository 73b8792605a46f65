"""API schemas of verification: replaying an experiment and comparing its stored snapshots."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from weightspace.verification import Reason, Verdict
from weightspace_service.schemas.analysis import SnapshotRef

_EXPERIMENT = "0b7c3c1e-6f6a-4f3e-9a39-1d2b7e2f8c10"
_ENVIRONMENT = {
    "torch": "2.5.1",
    "device": "cpu (x86_64)",
    "cpu_capability": "AVX2",
    "threads": "1",
}
Environment = dict[str, str]

VERIFY_EXAMPLES: dict[str, dict[str, Any]] = {
    "everything": {
        "summary": "Every run, up to the final epoch",
        "value": {},
    },
    "one step": {
        "summary": "Run 1 up to its snapshot at epoch 2",
        "value": {"run": 1, "epoch": 2},
    },
}


class VerifyIn(BaseModel):
    """What to verify; both left out: every run, up to the final epoch."""

    model_config = ConfigDict(extra="forbid", strict=True)

    run: int | None = Field(
        default=None,
        ge=0,
        le=1023,
        description="Replay only this run (default: every run).",
        examples=[1],
    )
    epoch: int | None = Field(
        default=None,
        ge=0,
        le=2**31 - 1,
        description="Replay up to this snapshot epoch, comparing every snapshot on the way "
        "(default: the final epoch). Replays start from the run's initial state, so this bounds "
        "the cost: training to this epoch once more.",
        examples=[2],
    )


class MetricValues(BaseModel):
    stored: float | None = Field(
        description="The stored snapshot's value (null if absent or not finite).", examples=[0.31]
    )
    replayed: float | None = Field(description="The replay's value, likewise.", examples=[0.32])


class DifferenceOut(BaseModel):
    """The first stored snapshot that the replay does not reproduce bitwise."""

    run: int = Field(examples=[1])
    epoch: int = Field(examples=[2])
    reason: Reason = Field(
        description="`parameters`: the parameter vector's bits differ (the metrics may too); "
        "`metrics`: only the metrics; `unreadable`: the stored file is missing or its bytes do "
        "not match their checksum.",
        examples=["parameters"],
    )
    detail: str = Field(
        description="What differs, in words.", examples=["1 of 1,234 parameters differ"]
    )
    differing_values: int = Field(
        description="Parameters whose bits differ (0 for `metrics` and `unreadable`).",
        examples=[1],
    )
    max_abs_difference: float | None = Field(
        description="The largest absolute difference among them (null if none is finite).",
        examples=[0.25],
    )
    metrics: dict[str, MetricValues] = Field(
        description="The metrics whose values differ, by name."
    )
    stored_environment: Environment = Field(
        description="What the stored snapshot was computed with (torch version, device, CPU "
        "instruction set, threads; empty for an unreadable file).",
        examples=[_ENVIRONMENT],
    )
    replay_environment: Environment = Field(
        description="What the replay computed with.", examples=[_ENVIRONMENT]
    )


class VerificationOut(BaseModel):
    """The latest verification of a scope: the replay's verdict and, if any, what differs."""

    experiment_id: uuid.UUID = Field(examples=[_EXPERIMENT])
    status: Literal["ready"] = Field(description="Always `ready` here.", examples=["ready"])
    run: int | None = Field(description="The run asked for (null: every run).", examples=[None])
    epoch: int | None = Field(
        description="The epoch asked for (null: the final epoch).", examples=[None]
    )
    verified_at: str = Field(
        description="When the replay finished (ISO 8601, UTC).",
        examples=["2026-12-01T10:00:00+00:00"],
    )
    verdict: Verdict = Field(
        description="`identical`: every compared snapshot was reproduced bit for bit (parameters "
        "and metrics); `differs`: see `difference`.",
        examples=["identical"],
    )
    runs: list[int] = Field(description="The runs replayed.", examples=[[0, 1]])
    until_epoch: int = Field(description="The epoch the replay ran to.", examples=[4])
    compared: list[SnapshotRef] = Field(
        description="The snapshots reproduced bitwise, in the order the replay reached them."
    )
    environment: Environment = Field(
        description="What the replay computed with.", examples=[_ENVIRONMENT]
    )
    difference: DifferenceOut | None = Field(
        description="The first snapshot not reproduced (null when `identical`)."
    )


class VerificationPending(BaseModel):
    experiment_id: uuid.UUID = Field(examples=[_EXPERIMENT])
    status: Literal["queued"] = Field(
        description="A worker replays the runs; poll `Location`.", examples=["queued"]
    )
    detail: str = Field(
        description="What is happening.",
        examples=["the runs are being replayed by a worker"],
    )

"""Response bodies of one experiment's analyses: PCA, distances, trajectory, barriers.

Analyses across experiments are in ``joint``; landscape planes in ``landscape``.
"""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, Field

from weightspace_service.schemas.common import Metrics


class PCAPoint(BaseModel):
    run: int
    epoch: int
    coordinates: list[float] = Field(description="The snapshot's coordinate on each component.")


class PCAOut(BaseModel):
    experiment_id: uuid.UUID
    complete: bool = Field(
        description="False while the experiment is still running: the answer covers what exists."
    )
    components: int = Field(description="Number of components.")
    explained_variance: list[float] = Field(description="Per component (divisor n - 1).")
    explained_variance_ratio: list[float] = Field(description="Per component, of the total.")
    cumulative_variance_ratio: list[float] = Field(description="Running sum of the ratios.")
    points: list[PCAPoint] = Field(description="One per snapshot, by run, then epoch.")


class DistancesOut(BaseModel):
    experiment_id: uuid.UUID
    complete: bool
    epoch: int = Field(description="The epoch compared (the final one unless asked).")
    runs: list[int] = Field(description="The runs compared: the rows and columns, in order.")
    distances: list[list[float]] = Field(
        description="Euclidean distances between the runs' snapshots at `epoch`."
    )
    cosine_similarity: list[list[float]] = Field(
        description="Cosine similarities between the runs' snapshots at `epoch`."
    )
    distance_from_origin: list[float] = Field(description="Norm of each run's snapshot.")
    distance_from_init: list[float] = Field(
        description="Distance of each run's snapshot from the run's first snapshot."
    )


class GradientOut(BaseModel):
    """The full-batch gradient at a snapshot (train set, dropout off), recorded at capture."""

    norm: float = Field(description="Norm of the gradient of the mean train loss.")
    norm_with_weight_decay: float = Field(
        description="Norm of the gradient of the objective SGD minimises: mean train loss + "
        "weight_decay / 2 * |w|^2."
    )
    null_band: list[float] = Field(
        description="95% band of `norm_with_weight_decay` under the sign-flip null (what the "
        "norm is when the expected gradient is zero: a critical point)."
    )
    null_band_without_weight_decay: list[float] = Field(
        description="95% band of `norm` (no weight decay) under the sign-flip null."
    )
    chunks: int = Field(description="Chunks of the train set the sign-flip null flips.")


class TrajectoryPoint(BaseModel):
    epoch: int
    metrics: Metrics = Field(description="Losses and accuracies at this snapshot.")
    step_length: float = Field(description="Distance from the previous snapshot (0 at the first).")
    path_length: float = Field(description="Sum of the step lengths so far.")
    displacement: float = Field(description="Distance from the run's first snapshot.")
    distance_from_origin: float = Field(description="Norm of the parameter vector.")
    straightness: float = Field(
        description="`displacement / path_length` (1.0 where the path length is 0)."
    )
    distance_per_epoch: float | None = Field(
        description="Distance from the previous snapshot / epochs between them (null at the first)."
    )
    loss_change_per_epoch: float | None = Field(
        description="Absolute change of the train loss since the previous snapshot, per epoch."
    )
    gradient: GradientOut | None = Field(
        description="Full-batch gradient norms and their null (null if not recorded)."
    )


class RunTrajectory(BaseModel):
    run: int
    points: list[TrajectoryPoint] = Field(description="The run's snapshots, in epoch order.")


class TrajectoryOut(BaseModel):
    experiment_id: uuid.UUID
    complete: bool
    runs: list[RunTrajectory] = Field(description="One per run, in run order.")


class LineOut(BaseModel):
    alphas: list[float] = Field(description="Positions on the line: 0 at `a`, 1 at `b`.")
    train_loss: list[float] = Field(description="Mean train loss at each alpha (nats).")
    test_loss: list[float] = Field(description="Mean test loss at each alpha (nats).")


class SnapshotRef(BaseModel):
    run: int
    epoch: int


class BarrierLineOut(BaseModel):
    kind: Literal["pair", "control"] = Field(
        description="`pair`: two runs' final solutions; `control`: one run's final solution and "
        "its own earlier snapshot at about the runs' mean separation."
    )
    a: SnapshotRef = Field(description="The line's start.")
    b: SnapshotRef = Field(description="The line's end.")
    distance: float = Field(description="Euclidean distance between `a` and `b`.")
    train_barrier: float = Field(
        description="Max over the line of the train loss minus the straight interpolation of "
        "its end losses (nats)."
    )
    test_barrier: float = Field(description="The same barrier on the test loss (nats).")
    disagreement: float = Field(
        description="Share of test examples the two ends classify differently."
    )
    line: LineOut = Field(description="The losses along the line.")


class BarriersOut(BaseModel):
    experiment_id: uuid.UUID
    status: Literal["ready"] = Field(description="The barriers are computed.")
    lines: list[BarrierLineOut] = Field(description="Every pair of runs, then the controls.")


class GramPending(BaseModel):
    experiment_id: uuid.UUID
    status: Literal["queued"] = Field(
        description="Too large to compute in the API: workers compute the snapshots' Gram "
        "matrix, sharded over parameters; ask again at `Location` later."
    )
    detail: str = Field(description="What is happening, in words.")


class BarriersPending(BaseModel):
    experiment_id: uuid.UUID
    status: Literal["queued"] = Field(description="A worker computes them: ask again later.")
    detail: str = Field(description="What is happening, in words.")

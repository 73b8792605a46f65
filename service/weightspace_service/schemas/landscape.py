"""API schemas of landscape planes and of barriers across experiments."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from weightspace.planes import PLANE_EXAMPLES

_EXPERIMENT = "0b7c3c1e-6f6a-4f3e-9a39-1d2b7e2f8c10"


class LandscapeOut(BaseModel):
    """Train and test loss on a grid over the PC1-PC2 plane of one run's trajectory."""

    experiment_id: uuid.UUID = Field(description="The experiment.", examples=[_EXPERIMENT])
    status: Literal["ready"] = Field(description="Always `ready` here.", examples=["ready"])
    run: int = Field(description="The run whose trajectory spans the plane.", examples=[0])
    epochs: list[int] = Field(
        description="Epochs of the run's snapshots, in the order of `trajectory`.",
        examples=[[0, 1, 2, 3]],
    )
    normalisation: Literal["none", "filter"] = Field(
        description="`none`: the axes are the unit principal directions, and `trajectory` is the "
        "orthogonal projection (the snapshots' PCA scores minus the final snapshot's). "
        "`filter`: each direction rescaled per filter to the norm of the final snapshot's filter "
        "(Li et al. 2018), biases zeroed; `trajectory` is then the least-squares position of "
        "each snapshot in that (non-orthogonal) basis.",
        examples=["none"],
    )
    explained_variance_ratio: list[float] = Field(
        description="Share of the run's variance explained by PC1 and PC2.",
        examples=[[0.81, 0.12]],
    )
    alphas: list[float] = Field(
        description="Grid coordinates along PC1 (symmetric about the final snapshot, 0).",
        examples=[[-1.0, 0.0, 1.0]],
    )
    betas: list[float] = Field(
        description="Grid coordinates along PC2.", examples=[[-0.5, 0.0, 0.5]]
    )
    train_loss: list[list[float]] = Field(
        description="Mean train loss (dropout off) at `centre + alphas[i] d1 + betas[j] d2`, "
        "indexed `[j][i]` (one row per beta).",
        examples=[[[0.9, 0.5, 0.8], [0.6, 0.1, 0.5], [0.9, 0.4, 0.7]]],
    )
    test_loss: list[list[float]] | None = Field(
        description="Mean test loss, like `train_loss` (null when a client evaluated the plane "
        "on one data set only).",
        examples=[[[1.0, 0.6, 0.9], [0.7, 0.2, 0.6], [1.0, 0.5, 0.8]]],
    )
    trajectory: list[list[float]] = Field(
        description="Per snapshot (in `epochs` order) its (PC1, PC2) coordinates; the last is "
        "(0, 0).",
        examples=[[[0.9, -0.2], [0.4, 0.3], [0.0, 0.0]]],
    )
    train_examples: int = Field(
        description=f"Train examples the losses average over (the first ones, at most "
        f"{PLANE_EXAMPLES}).",
        examples=[2048],
    )
    test_examples: int | None = Field(description="Test examples, likewise.", examples=[2048])
    evaluated_by: Literal["service", "client"] = Field(
        default="service",
        description="`service`: a worker evaluated the grid with the experiment's model; "
        "`client`: the owner's client evaluated it with its own model "
        "(`PUT /experiments/{id}/landscape`).",
        examples=["service"],
    )


_LOSSES = Field(min_length=1, max_length=51)


class LandscapeEvaluation(BaseModel):
    """Losses a client evaluated over the grid of `GET /experiments/{id}/landscape/plane`."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    train_loss: list[Annotated[list[float], _LOSSES]] = Field(
        min_length=1,
        max_length=51,
        description="Mean loss at grid point `centre + alphas[i] d1 + betas[j] d2`, indexed "
        "`[j][i]` (one row per beta): as many rows as `betas`, as many columns as `alphas`.",
        examples=[[[0.9, 0.5, 0.8], [0.6, 0.1, 0.5], [0.9, 0.4, 0.7]]],
    )
    test_loss: list[Annotated[list[float], _LOSSES]] | None = Field(
        default=None,
        min_length=1,
        max_length=51,
        description="The same on a second (test) data set, if any.",
        examples=[[[1.0, 0.6, 0.9], [0.7, 0.2, 0.6], [1.0, 0.5, 0.8]]],
    )
    train_examples: int = Field(
        ge=1, le=2**31 - 1, description="Examples `train_loss` averages over.", examples=[2048]
    )
    test_examples: int | None = Field(
        default=None, ge=1, le=2**31 - 1, description="Examples `test_loss` averages over."
    )


class LandscapePending(BaseModel):
    experiment_id: uuid.UUID = Field(description="The experiment.", examples=[_EXPERIMENT])
    status: Literal["queued"] = Field(
        description="A worker computes the plane; poll `Location`.", examples=["queued"]
    )
    detail: str = Field(
        description="What is happening.", examples=["the plane is being computed by a worker"]
    )


class JointEnd(BaseModel):
    experiment: uuid.UUID = Field(description="Its experiment.", examples=[_EXPERIMENT])
    run: int = Field(description="Its run in that experiment.", examples=[0])
    epoch: int = Field(description="Its epoch.", examples=[20])


class JointLineLoss(BaseModel):
    alphas: list[float] = Field(
        description="Positions along the line (0: `a`, 1: `b`).", examples=[[0.0, 0.5, 1.0]]
    )
    train_loss: list[float] = Field(
        description="Train loss at each position (dropout off).", examples=[[0.1, 0.9, 0.1]]
    )
    test_loss: list[float] = Field(
        description="Test loss at each position.", examples=[[0.2, 1.0, 0.2]]
    )


class JointBarrierLine(BaseModel):
    kind: Literal["pair", "control"] = Field(
        description="`pair`: two selected runs' last selected snapshots; `control`: one run's "
        "last selected snapshot and its own earlier selected snapshot at about the pairs' mean "
        "separation.",
        examples=["pair"],
    )
    a: JointEnd = Field(description="Where the line starts.")
    b: JointEnd = Field(description="Where the line ends.")
    distance: float = Field(description="Euclidean distance between the ends.", examples=[12.5])
    train_barrier: float = Field(
        description="Max over the line of the train loss minus the straight interpolation of "
        "its end losses (nats).",
        examples=[0.4],
    )
    test_barrier: float = Field(description="Likewise for the test loss.", examples=[0.45])
    disagreement: float = Field(
        description="Share of test examples the two ends classify differently.", examples=[0.03]
    )
    line: JointLineLoss = Field(description="The losses along the line.")


class JointBarriers(BaseModel):
    lines: list[JointBarrierLine] = Field(description="Every pair, then the controls.")

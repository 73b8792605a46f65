"""Request and response bodies of analyses across experiments (``POST /analyses``).

The request selects snapshots of several experiments; the response's barriers are in ``landscape``.
"""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from weightspace_app.usecases import joint

from weightspace.analysis import PCAResult
from weightspace_service.params import MAX_SELECTED_EPOCHS, BoundedInt
from weightspace_service.schemas.landscape import JointBarriers


class SelectionIn(BaseModel):
    """Snapshots of one experiment: the given runs at the given epochs (default: all)."""

    model_config = ConfigDict(extra="forbid")

    experiment: uuid.UUID = Field(description="An experiment of yours.")
    runs: list[BoundedInt] | None = Field(
        default=None, max_length=64, description="Runs to include; all by default."
    )
    epochs: list[BoundedInt] | None = Field(
        default=None,
        max_length=MAX_SELECTED_EPOCHS,
        description="Epochs to include; all by default.",
    )


class AnalysisIn(BaseModel):
    """An analysis of snapshots from several experiments with the same parameter layout."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["pca", "distances", "barriers"] = Field(
        description="`pca`: one joint PCA basis; `distances`: the matrix of distances between "
        "every pair of selected snapshots; `barriers`: loss barriers between every two selected "
        "runs' last selected snapshots (experiments the service trained, one model and data set)."
    )
    selection: list[SelectionIn] = Field(
        min_length=1, max_length=32, description="One entry per experiment (each at most once)."
    )
    components: int = Field(default=2, ge=1, le=64, description="PCA only: components.")

    def to_request(self) -> joint.Request:
        return joint.Request(
            self.kind,
            tuple(
                joint.Part(
                    s.experiment,
                    None if s.runs is None else tuple(sorted(set(s.runs))),
                    None if s.epochs is None else tuple(sorted(set(s.epochs))),
                )
                for s in self.selection
            ),
            self.components,
        )


ANALYSIS_EXAMPLES = {
    "pca": {
        "summary": "Joint PCA of two experiments' final snapshots",
        "value": {
            "kind": "pca",
            "components": 2,
            "selection": [
                {"experiment": "0b7c3c1e-6f6a-4f3e-9a39-1d2b7e2f8c10", "epochs": [20]},
                {"experiment": "5d2e9f4a-2c3b-4b8e-8f61-7a9c0d1e2f30", "runs": [0, 1]},
            ],
        },
    },
    "barriers": {
        "summary": "Barriers between the final solutions of two trained experiments",
        "value": {
            "kind": "barriers",
            "selection": [
                {"experiment": "0b7c3c1e-6f6a-4f3e-9a39-1d2b7e2f8c10"},
                {"experiment": "5d2e9f4a-2c3b-4b8e-8f61-7a9c0d1e2f30"},
            ],
        },
    },
    "distances": {
        "summary": "Distances between every snapshot of two experiments",
        "value": {
            "kind": "distances",
            "selection": [
                {"experiment": "0b7c3c1e-6f6a-4f3e-9a39-1d2b7e2f8c10"},
                {"experiment": "5d2e9f4a-2c3b-4b8e-8f61-7a9c0d1e2f30"},
            ],
        },
    },
}


class JointSnapshot(BaseModel):
    experiment: uuid.UUID = Field(description="The experiment of this row.")
    run: int = Field(description="Its run within that experiment.")
    epoch: int = Field(description="Its epoch.")

    @classmethod
    def of(cls, label: joint.Label) -> JointSnapshot:
        return cls(experiment=label.experiment, run=label.run, epoch=label.epoch)


class JointPCA(BaseModel):
    components: int = Field(description="Number of components.")
    explained_variance: list[float] = Field(description="Per component (divisor n - 1).")
    explained_variance_ratio: list[float] = Field(description="Per component, of the total.")
    cumulative_variance_ratio: list[float] = Field(description="Running sum of the ratios.")
    coordinates: list[list[float]] = Field(
        description="One row per selected snapshot (in `snapshots` order), one column per component."
    )

    @classmethod
    def of(cls, result: PCAResult) -> JointPCA:
        return cls(
            components=int(result.coordinates.shape[1]),
            explained_variance=result.explained_variance.tolist(),
            explained_variance_ratio=result.explained_variance_ratio.tolist(),
            cumulative_variance_ratio=result.cumulative_variance_ratio.tolist(),
            coordinates=result.coordinates.tolist(),
        )


class JointDistances(BaseModel):
    distances: list[list[float]] = Field(description="Euclidean distances, `snapshots` order.")
    cosine_similarity: list[list[float]] = Field(description="Cosine similarities.")
    distance_from_origin: list[float] = Field(description="Norm of each snapshot.")

    @classmethod
    def of(cls, matrix: joint.DistanceMatrix) -> JointDistances:
        return cls(
            distances=matrix.distances.tolist(),
            cosine_similarity=matrix.cosine_similarity.tolist(),
            distance_from_origin=matrix.distance_from_origin.tolist(),
        )


class AnalysisOut(BaseModel):
    id: uuid.UUID = Field(description="The same request gets the same id.")
    kind: Literal["pca", "distances", "barriers"] = Field(description="What was asked.")
    status: Literal["running", "succeeded"] = Field(description="`running`: poll `links.self`.")
    complete: bool = Field(description="False while any selected experiment is still running.")
    snapshots: list[JointSnapshot] = Field(description="The rows, in order.")
    pca: JointPCA | None = Field(default=None, description="For `pca`, once succeeded.")
    distances: JointDistances | None = Field(
        default=None, description="For `distances`, once succeeded."
    )
    barriers: JointBarriers | None = Field(
        default=None, description="For `barriers`, once succeeded."
    )
    links: dict[str, str] = Field(description="`self`: where to poll.")

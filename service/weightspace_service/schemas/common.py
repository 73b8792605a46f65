"""Pieces the resource modules share: the status vocabulary, metrics and the warnings field.

Metrics appear in runs, snapshots and trajectory points; the warnings field in the submission
responses of experiments and suites.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from weightspace import vocabulary

Status = vocabulary.Status


class Metrics(BaseModel):
    """Losses and accuracies (dropout off). Trained experiments have all four; uploaded
    snapshots have whatever metrics were sent with them (any names, as extra fields)."""

    model_config = ConfigDict(extra="allow")

    train_loss: float | None = Field(default=None, description="Mean loss on the training set.")
    train_accuracy: float | None = Field(default=None, description="Accuracy on the training set.")
    test_loss: float | None = Field(default=None, description="Mean loss on the test set.")
    test_accuracy: float | None = Field(default=None, description="Accuracy on the test set.")


def _warnings() -> Any:
    return Field(
        default_factory=list,
        description="Submission responses only: why the work may not start soon, e.g. that no live "
        "worker consumes the queue (it stays queued until one starts). Empty when read back.",
        examples=[
            [
                "no live worker consumes queue `gpu`: the experiment stays queued until one starts "
                "(GET /workers lists the live workers)"
            ]
        ],
    )

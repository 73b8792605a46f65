"""Claim 1: the loss flattens, yet the weights are not at a critical point and keep travelling.

Three tests, all on experiment 1's trajectory:

- the premise, that the loss has flattened: the absolute change of the train loss over the last
  quarter of training is at most a tenth of its change over the first quarter (a stated tolerance:
  no null calibrates "flat", and without it the claim is not about this run);
- not at a critical point: the full-batch gradient norm of the objective SGD minimises (train
  loss plus the weight-decay term, dropout off) at the final snapshot lies above the sign-flip
  null, i.e. the band of norms the full-batch gradient has when its expectation is zero;
- large movements, not jitter around a point: the last quarter's path is straighter
  (displacement / path length) than random walks with the same step lengths in random directions.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from weightspace import nulls
from weightspace.claims.base import (
    Claim,
    ExperimentResult,
    Reference,
    Test,
    not_measured,
    step_lengths,
    tolerance,
)
from weightspace.nulls import Band

PAPER = (
    "Apparent convergence of loss does not correspond to weights arriving at critical points, "
    "but instead to large movements through flat regions of weight space."
)
LOSS_FLAT_TOLERANCE = 0.1  # last-quarter absolute loss change / first-quarter one, at most


def quarters(epochs: Sequence[int]) -> tuple[list[int], list[int]]:
    """Positions of the snapshots spanning the first and the last quarter of training."""
    start, end = epochs[0], epochs[-1]
    q1, q3 = start + (end - start) / 4, start + 3 * (end - start) / 4
    first = [i for i, e in enumerate(epochs) if e <= q1]
    last = [i for i, e in enumerate(epochs) if e >= q3]
    if len(first) < 2:
        first = [0, 1]
    if len(last) < 2:
        last = [len(epochs) - 2, len(epochs) - 1]
    return first, last


def _template() -> Claim:
    return Claim(
        "1",
        PAPER,
        "Experiment 1: once the train loss has flattened, the full-batch gradient is still "
        "significantly non-zero and the weights still travel in a consistent direction.",
        f"supported if (a) the last quarter's absolute train-loss change is at most "
        f"{LOSS_FLAT_TOLERANCE} of the first quarter's, (b) the final full-batch gradient norm "
        "(with the weight-decay term) is above the 95% band of the sign-flip null, and (c) the "
        "last quarter's straightness is above the 95% band of random walks with its step lengths",
    )


def claim_flat_regions(trajectory: ExperimentResult | None) -> Claim:
    claim = _template()
    if trajectory is None or len(trajectory.epochs) < 4:
        return not_measured(claim, "experiment 1 has too few snapshots (4 or more needed)")
    run = trajectory.run_indices()[min(trajectory.run_indices())]
    final = trajectory.gradient(run[-1])
    if final is None:
        return not_measured(claim, "no full-batch gradient norm was recorded with the snapshots")
    epochs = [trajectory.epochs[i] for i in run]
    loss = np.array([trajectory.metrics[i]["train_loss"] for i in run])
    steps = step_lengths(trajectory, run)
    first, last = quarters(epochs)

    def loss_change(span: list[int]) -> float:
        return float(abs(loss[span[0]] - loss[span[-1]]))

    def per_epoch(span: list[int]) -> float:
        return float(steps[span[0] : span[-1]].sum() / (epochs[span[-1]] - epochs[span[0]]))

    flat = loss_change(last) / max(loss_change(first), 1e-300)
    late = steps[last[0] : last[-1]]
    dot = trajectory.gram.subset([run[i] for i in last]).dot()
    walk = nulls.walk_null([late.tolist()], trajectory.gram.size, spectrum=False)
    start = trajectory.gradient(run[0])
    tests = [
        Test(
            "loss_flat",
            "absolute train-loss change over the last quarter / over the first quarter",
            flat,
            "below",
            tolerance(LOSS_FLAT_TOLERANCE, "the premise: the loss has flattened"),
        ),
        Test(
            "final_gradient_norm",
            "full-batch gradient norm of train loss + weight-decay term at the final snapshot",
            float(final["norm_with_weight_decay"]),
            "above",
            Reference(
                "null",
                f"sign-flip null: the norm of the sum of the {final['chunks']} chunk gradients "
                "with random signs, i.e. what the gradient is when its expectation is zero "
                "(a critical point)",
                Band(
                    low=float(final["null_band"][0]),
                    high=float(final["null_band"][1]),
                    mean=float(final["null_mean"]),
                    samples=int(final["null_samples"]),
                ),
            ),
        ),
        Test(
            "late_straightness",
            "displacement / path length over the last quarter of training",
            nulls.straightness(dot),
            "above",
            Reference(
                "null",
                f"random walks with the last quarter's {len(late)} step lengths in random "
                f"directions of R^{trajectory.gram.size} (simulated exactly, "
                f"{walk.straightness.shape[0]} walks): jitter without direction",
                nulls.band(walk.straightness[:, 0]),
            ),
        ),
    ]
    measured = {
        "first_quarter_epochs": [epochs[first[0]], epochs[first[-1]]],
        "last_quarter_epochs": [epochs[last[0]], epochs[last[-1]]],
        "loss_change_per_epoch_first_quarter": loss_change(first)
        / (epochs[first[-1]] - epochs[first[0]]),
        "loss_change_per_epoch_last_quarter": loss_change(last)
        / (epochs[last[-1]] - epochs[last[0]]),
        "distance_per_epoch_first_quarter": per_epoch(first),
        "distance_per_epoch_last_quarter": per_epoch(last),
        "gradient_norm_at_start": None if start is None else start["norm_with_weight_decay"],
        "gradient_norm_at_end": final["norm_with_weight_decay"],
        "gradient_norm_at_end_without_weight_decay": final["norm"],
    }
    return Claim(claim.id, claim.paper, claim.statement, claim.rule, tests, measured)

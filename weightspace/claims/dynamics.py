"""Claim 1: the loss flattens, yet the weights are not at a critical point and keep travelling.

Three tests, all on experiment 1's trajectory:

- the premise, that the loss has flattened: the absolute change of the train loss over the last
  quarter of training is at most a tenth of its change over the first quarter (a stated tolerance:
  no null calibrates "flat", and without it the claim is not about this run);
- not at a critical point: the full-batch gradient norm of the objective SGD minimises (train
  loss plus the weight-decay term, dropout off) at the final snapshot lies above the sign-flip
  null, i.e. the band of norms the full-batch gradient has when its expectation is zero;
- large movements, not a stay near one point: over the late window (the last half of the
  snapshots) the mean squared displacement keeps growing with the lag. Its growth exponent must
  lie above the band of a confined process (a stationary Ornstein-Uhlenbeck process that forgets
  its position within a quarter of the window, which gives about 0.5 at these lags) and be at
  least :data:`TRAVEL_EXPONENT_MIN` (halfway between a process stuck near a point, 0, and free
  diffusion, 1: diffusion is travel too, so a random walk is not the null here).

Beside the tests: the loss along the late chord (the straight line from the late window's first
snapshot to the last), which says whether the region travelled through is flat.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from weightspace import nulls
from weightspace.claims.base import (
    Claim,
    ExperimentResult,
    LineLoss,
    Reference,
    Test,
    barrier,
    not_measured,
    relative_rise,
    step_lengths,
    tolerance,
)
from weightspace.nulls import Band

PAPER = (
    "Apparent convergence of loss does not correspond to weights arriving at critical points, "
    "but instead to large movements through flat regions of weight space."
)
LOSS_FLAT_TOLERANCE = 0.1  # last-quarter absolute loss change / first-quarter one, at most
# The least MSD growth exponent that counts as travelling: halfway between confined (0) and free
# diffusion (1); a process confined for a quarter of the window already reaches about 0.5.
TRAVEL_EXPONENT_MIN = 0.5
CONFINEMENT_SHARE = 0.25  # the null's relaxation time, as a share of the late window's lags
LATE_WINDOW_MIN = 4  # snapshots in the late window, at least


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


def late_window(epochs: Sequence[int]) -> list[int]:
    """Positions of the last half of the snapshots (at least :data:`LATE_WINDOW_MIN`)."""
    count = min(len(epochs), max(LATE_WINDOW_MIN, (len(epochs) + 1) // 2))
    return list(range(len(epochs) - count, len(epochs)))


def _template() -> Claim:
    return Claim(
        "1",
        PAPER,
        "Experiment 1: once the train loss has flattened, the full-batch gradient is still "
        "significantly non-zero and the weights keep moving away from where they were, rather "
        "than jittering near one point.",
        f"supported if (a) the last quarter's absolute train-loss change is at most "
        f"{LOSS_FLAT_TOLERANCE} of the first quarter's, (b) the final full-batch gradient norm "
        "(with the weight-decay term) is above the 95% band of the sign-flip null, and (c) over "
        "the last half of the snapshots the mean squared displacement grows with the lag with an "
        "exponent above the 95% band of a confined process (relaxing within a quarter of the "
        f"window) and at least {TRAVEL_EXPONENT_MIN} (0: stuck near a point; 1: free diffusion)",
    )


def late_chord_scan(chord: LineLoss) -> dict[str, float]:
    """The late chord's train-loss barrier and largest rise (share of its range), and its ends."""
    return {
        "train_barrier": barrier(chord.train_loss),
        "train_rise": relative_rise(chord.train_loss),
        "start_train_loss": float(chord.train_loss[0]),
        "end_train_loss": float(chord.train_loss[-1]),
        "max_train_loss": float(max(chord.train_loss)),
    }


def claim_flat_regions(
    trajectory: ExperimentResult | None, late_chord: LineLoss | None = None
) -> Claim:
    """``late_chord``: the losses along the line from the late window's first snapshot to its
    last (:func:`late_window`), reported beside the tests."""
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
    late = late_window(epochs)
    late_dot = trajectory.gram.subset([run[i] for i in late]).dot()
    exponent = nulls.msd_exponent(late_dot)
    relaxation = CONFINEMENT_SHARE * (len(late) - 1)
    confined = nulls.confined_null(len(late), trajectory.gram.size, relaxation)
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
            "late_msd_exponent",
            f"growth exponent of the mean squared displacement with the lag over epochs "
            f"{epochs[late[0]]}-{epochs[late[-1]]} (the last half of the snapshots)",
            float(exponent),
            "above",
            Reference(
                "null",
                f"a confined process: stationary Ornstein-Uhlenbeck with relaxation time "
                f"{relaxation:.3g} snapshot intervals (a quarter of the window), "
                f"{len(late)} snapshots in R^{trajectory.gram.size} (simulated exactly)",
                nulls.band(confined),
            ),
            TRAVEL_EXPONENT_MIN,
        ),
    ]
    measured: dict[str, Any] = {
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
        "late_window_epochs": [epochs[late[0]], epochs[late[-1]]],
        "late_straightness": nulls.straightness(late_dot),
    }
    if late_chord is not None:
        measured["late_chord"] = late_chord_scan(late_chord)
    return Claim(claim.id, claim.paper, claim.statement, claim.rule, tests, measured)

"""Claims 2a, 2b and 3: the straight line from initialisation to solution, and the path taken.

- 2a: the train loss along the straight line from experiment 1's initialisation to its solution
  never rises by more than 1% of the line's own loss range (>= 25 points). Decided on the train
  loss, as Goodfellow et al. (2015) judge it (the objective SGD descends; the test loss near the
  solution measures overfitting, which is reported beside it). The control is the lines between
  independently trained solutions (experiment 2), which cross barriers: the statistic must lie
  below their band, showing it detects a rise where one exists.
- 2b: the path taken is far from straight: its straightness (displacement / path length) is at
  most :data:`STRAIGHTNESS_MAX`, i.e. the path is at least 1.5 times as long as the straight line,
  whose straightness is 1 (the reference the paper contrasts it with). Random walks with the same
  step lengths are reported beside it (is the path straighter or less straight than noise?).
- 3: the top two principal components explain more of the trajectory's variance than they do
  for random walks with the same step lengths (the finite-n null, simulated in the model's own
  dimension), by at least :data:`TOP_FEW_EFFECT_MIN` of the variance: the null's band narrows
  with the dimension, so without a least effect any drift would pass. Joint PCAs of pooled runs
  are compared with pooled walks from the same starting points.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from weightspace import nulls
from weightspace.analysis import pca
from weightspace.claims.base import (
    BarrierReport,
    Claim,
    ExperimentResult,
    LineLoss,
    Reference,
    Test,
    not_measured,
    relative_rise,
    step_lengths,
    tolerance,
)
from weightspace.nulls import Band

LINE_POINTS_MIN = 25
LINE_RISE_TOLERANCE = 0.01  # of the line's own loss range
TOP_FEW = 2
TOP_MANY = 10
# 2b: "far from straight" means a path at least 1.5 times as long as the straight line.
STRAIGHTNESS_MAX = 2 / 3
# 3: the least excess of the top-2 share over the random walks' mean share (5 points of variance).
TOP_FEW_EFFECT_MIN = 0.05


def _first_run(result: ExperimentResult) -> list[int]:
    indices = result.run_indices()
    return indices[min(indices)]


def claim_line_monotone(line: LineLoss | None, control: BarrierReport | None = None) -> Claim:
    claim = Claim(
        "2a",
        "The straight line from initialisation to solution has monotonically decreasing loss "
        "(Goodfellow et al., 2014).",
        "Experiment 1: the train loss along (1 - a) init + a solution, a in [0, 1] (the test "
        "loss along it is reported beside).",
        f"supported if the train loss rises nowhere along the line by more than "
        f"{LINE_RISE_TOLERANCE:.0%} of the line's own loss range ({LINE_POINTS_MIN} or more "
        "points), and lies below the band of the lines between independent solutions",
    )
    if line is None:
        return not_measured(claim, "the line from experiment 1's initialisation was not evaluated")
    if len(line.alphas) < LINE_POINTS_MIN or len(line.test_loss) != len(line.alphas):
        return not_measured(
            claim, f"the line needs {LINE_POINTS_MIN} or more points with train and test loss"
        )
    pairs = control.of_kind("pair") if control is not None else []
    tests = []
    for split in ("train", "test"):
        losses = line.train_loss if split == "train" else line.test_loss
        rises = [
            relative_rise(p.line.train_loss if split == "train" else p.line.test_loss)
            for p in pairs
        ]
        reference = (
            Reference(
                "control",
                f"the same statistic on the {len(rises)} lines between experiment 2's "
                "independently trained solutions (lines that cross a barrier)",
                nulls.band(rises),
            )
            if len(rises) >= 2
            else tolerance(LINE_RISE_TOLERANCE, "monotone within the tolerance (no control run)")
        )
        tests.append(
            Test(
                f"line_{split}_rise",
                f"largest rise of the {split} loss along the line / the line's {split} loss range",
                relative_rise(losses),
                "below",
                reference,
                LINE_RISE_TOLERANCE,
            )
        )
    train, test = tests
    measured = {
        "points": len(line.alphas),
        "line_train_loss": list(line.train_loss),
        "line_test_loss": list(line.test_loss),
    }
    return Claim(claim.id, claim.paper, claim.statement, claim.rule, [train], measured, "", [test])


def claim_path_not_straight(trajectory: ExperimentResult | None) -> Claim:
    claim = Claim(
        "2b",
        "The path actually taken from initialisation to solution is far from straight.",
        "Experiment 1: the straightness (displacement / path length) of the trajectory, beside "
        "the straight line's 1.",
        f"supported if the straightness is at most {STRAIGHTNESS_MAX:.2g} (the path at least 1.5 "
        "times as long as the straight line from initialisation to solution); random walks with "
        "the same step lengths are reported beside it",
    )
    if trajectory is None or len(_first_run(trajectory)) < 3:
        return not_measured(claim, "experiment 1 has too few snapshots (3 or more needed)")
    run = _first_run(trajectory)
    steps = step_lengths(trajectory, run)
    walk = nulls.walk_null([steps.tolist()], trajectory.gram.size, spectrum=False)
    measured = nulls.straightness(trajectory.gram.subset(run).dot())
    test = Test(
        "straightness",
        "displacement / path length of the whole trajectory",
        measured,
        "below",
        Reference(
            "control",
            "the straight line from initialisation to solution (straightness 1), the path the "
            "paper contrasts the trajectory with",
            Band(1.0, 1.0, 1.0, 1),
        ),
        STRAIGHTNESS_MAX,
    )
    walks = nulls.band(walk.straightness[:, 0])
    beside = Test(
        "straightness_vs_random_walk",
        f"the same, beside random walks of {len(steps)} steps with the measured lengths in "
        f"random directions of R^{trajectory.gram.size} (simulated exactly, "
        f"{walk.straightness.shape[0]} walks): below the band is less straight than noise",
        measured,
        "below",
        Reference("null", "random walks with the trajectory's step lengths", walks),
    )
    return Claim(
        claim.id,
        claim.paper,
        claim.statement,
        claim.rule,
        [test],
        {
            "path_length": float(steps.sum()),
            "snapshots": len(run),
            "straighter_than_random_walks": bool(measured > walks.high),
        },
        beside=[beside],
    )


def joint_spectrum(result: ExperimentResult) -> dict[str, Any]:
    """Top-2 and top-10 shares of all the experiment's snapshots beside pooled random walks."""
    runs = list(result.run_indices().values())
    starts = [positions[0] for positions in runs]
    walk = nulls.walk_null(
        [step_lengths(result, positions).tolist() for positions in runs],
        result.gram.size,
        starts_dot=result.gram.subset(starts).dot() if len(starts) > 1 else None,
    )
    ratios = pca(result.gram).explained_variance_ratio
    out: dict[str, Any] = {"runs": len(runs), "snapshots": result.gram.n}
    for k in (TOP_FEW, TOP_MANY):
        null = nulls.band(walk.cumulative(k))
        out[f"top{k}"] = float(ratios[:k].sum())
        out[f"top{k}_null"] = [null.low, null.high]
    out["null_mean_ratios"] = walk.ratios.mean(axis=0)[:TOP_MANY].tolist()
    return out


def claim_few_components(
    trajectory: ExperimentResult | None, others: list[ExperimentResult] | None = None
) -> Claim:
    claim = Claim(
        "3",
        "A few principal components explain most of the variance of a training trajectory.",
        "Experiment 1: the share of the trajectory's variance explained by its top 2 principal "
        "components.",
        "supported if the top-2 share is above the 95% band of random walks with the same number "
        "of snapshots and step lengths (a random walk already puts about 76% on 2 components) "
        f"and at least {TOP_FEW_EFFECT_MIN:.0%} of the variance above the walks' mean share",
    )
    if trajectory is None or len(_first_run(trajectory)) < 3:
        return not_measured(claim, "experiment 1 has too few snapshots (3 or more needed)")
    run = _first_run(trajectory)
    steps = step_lengths(trajectory, run)
    walk = nulls.walk_null([steps.tolist()], trajectory.gram.size)
    ratios = pca(trajectory.gram.subset(run)).explained_variance_ratio
    reference = (
        f"random walks with the trajectory's {len(steps)} step lengths in random directions of "
        f"R^{trajectory.gram.size} (simulated exactly, {walk.ratios.shape[0]} walks)"
    )
    top_many = nulls.band(walk.cumulative(TOP_MANY))
    null = nulls.band(walk.cumulative(TOP_FEW))
    test = Test(
        f"top{TOP_FEW}",
        f"share of variance of the top {TOP_FEW} principal components",
        float(ratios[:TOP_FEW].sum()),
        "above",
        Reference("null", reference, null),
        null.mean + TOP_FEW_EFFECT_MIN,
    )
    measured: dict[str, Any] = {
        "snapshots": len(run),
        "explained_variance_ratio": ratios[:TOP_MANY].tolist(),
        "null_mean_ratios": walk.ratios.mean(axis=0)[:TOP_MANY].tolist(),
        f"top{TOP_MANY}": float(ratios[:TOP_MANY].sum()),
        f"top{TOP_MANY}_null": [top_many.low, top_many.high],
        "random_walk_limit_top2": sum(6 / (np.pi**2 * k**2) for k in (1, 2)),
    }
    for other in others or []:
        if other.gram.n >= 3:
            measured[f"joint {other.role}"] = joint_spectrum(other)
    return Claim(claim.id, claim.paper, claim.statement, claim.rule, [test], measured)

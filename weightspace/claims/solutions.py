"""Claims 4 and 5: where runs end up, relative to each other.

- 4 (different basins): the train-loss barrier on the straight line between two runs' final
  solutions, for runs from one initialisation (experiment 3) and clones of one partly trained
  model (experiment 4). The control is each run's own trajectory: the line between its final
  solution and its own earlier snapshot at the distance closest to the runs' mean separation,
  two points that SGD connects through low loss. Supported if the mean barrier between runs is
  above the controls' 95% band in both experiments, and at least :data:`BARRIER_FLOOR`: the
  controls' band is often exactly [0, 0] (a run's own path is linearly connected), and a barrier
  of a thousandth of a nat above it is not a different basin (Frankle et al. 2020 likewise take
  error barriers under 2% as linear connectivity).
- 5 (equidistant solutions): the coefficient of variation of the final pairwise distances and of
  the distances from the origin, in experiments 2, 3 and 4. In high dimension nearly equal
  distances are what chance gives, so each must lie below the band of the control: sets of as
  many untrained initialisations of the same model (or, without them, iid gaussian vectors in the
  model's dimension). The experiments are also compared with each other (permutation null).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from weightspace import nulls
from weightspace.claims.base import (
    BarrierReport,
    Claim,
    ExperimentResult,
    Reference,
    Test,
    not_measured,
)

BASIN_ROLES = ("shared-init", "pretrained-clones")
# The least mean train-loss barrier (nats) that counts as a different basin, beside the control.
BARRIER_FLOOR = 0.01
SPREAD_ROLES = ("independent-inits", "shared-init", "pretrained-clones")
# Measured and reported beside the tests, not tested: experiment 2 (independent starts: the
# reference the basins of 3 and 4 are compared with) and 3b (one start, each run's own dropout
# masks as well as its own order: shows what the masks add to the shuffle order of experiment 3).
ALSO_MEASURED = ("independent-inits", "shared-init-masks")
MIN_RUNS = 3


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


def barrier_summary(report: BarrierReport) -> dict[str, Any]:
    pairs, controls = report.of_kind("pair"), report.of_kind("control")
    return {
        "pairs": len(pairs),
        "mean_train_barrier": _mean([p.train_barrier for p in pairs]),
        "mean_test_barrier": _mean([p.test_barrier for p in pairs]),
        "mean_disagreement": _mean([p.disagreement for p in pairs]),
        "mean_distance": _mean([p.distance for p in pairs]),
        "control_train_barriers": [c.train_barrier for c in controls],
        "control_distances": [c.distance for c in controls],
    }


def claim_different_basins(barriers: Mapping[str, BarrierReport | None]) -> Claim:
    claim = Claim(
        "4",
        "Error surfaces are locally non-convex, even after breaking symmetry with a random "
        "initialization and also after partial training: runs from one initialisation, or "
        "clones of a partly trained model, with different data orders end in different basins.",
        "Experiments 3 and 4: the train-loss barrier between every two runs' final solutions "
        "(max over the line of the loss minus the straight interpolation of its end losses).",
        "supported if, in both experiments, the mean barrier between runs is above the 95% band "
        "of the controls (lines from each run's solution to its own earlier snapshot at the "
        f"runs' mean separation) and at least {BARRIER_FLOOR} nats",
    )
    missing = [r for r in BASIN_ROLES if barriers.get(r) is None]
    if missing:
        return not_measured(claim, f"no barriers for {', '.join(missing)}")
    tests, measured = [], {}
    for role in BASIN_ROLES:
        report = barriers[role]
        assert report is not None
        summary = barrier_summary(report)
        measured[role] = summary
        if summary["pairs"] < 1 or len(summary["control_train_barriers"]) < 2:
            return not_measured(claim, f"{role} needs 2 or more runs with 2 or more snapshots")
        tests.append(
            Test(
                f"mean_train_barrier_{role}",
                f"mean train-loss barrier between the final solutions of {role}",
                summary["mean_train_barrier"],
                "above",
                Reference(
                    "control",
                    f"barriers on the {len(summary['control_train_barriers'])} lines from each "
                    f"run's solution to its own earlier snapshot at about the runs' separation",
                    nulls.band(summary["control_train_barriers"]),
                ),
                BARRIER_FLOOR,
            )
        )
    for role in ALSO_MEASURED:
        if (report := barriers.get(role)) is not None:
            measured[role] = barrier_summary(report)
    return Claim(claim.id, claim.paper, claim.statement, claim.rule, tests, measured)


def spread(result: ExperimentResult) -> dict[str, Any]:
    finals = result.final_indices()
    dot = result.gram.subset(finals).dot()
    pairs = nulls.pairwise(dot)
    norms = np.sqrt(np.clip(np.diag(dot), 0.0, None))
    return {
        "runs": len(finals),
        "epoch": int(result.epochs[finals[0]]),
        "pairwise_distances": pairs.tolist(),
        "mean_pairwise_distance": float(pairs.mean()),
        "cv_pairwise_distance": nulls.coefficient_of_variation(pairs),
        "mean_norm": float(norms.mean()),
        "cv_norm": nulls.coefficient_of_variation(norms),
    }


def _spread_across(spreads: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Ratio of the largest to the smallest mean pairwise distance, beside a permutation null."""
    groups = [np.asarray(s["pairwise_distances"]) for s in spreads.values()]
    pooled = np.concatenate(groups)
    sizes = np.cumsum([len(g) for g in groups])[:-1]

    def ratio(parts: list[np.ndarray]) -> float:
        means = [p.mean() for p in parts]
        return float(max(means) / min(means)) if min(means) > 0 else float("inf")

    rng = np.random.default_rng(nulls.NULL_SEED)
    null = nulls.band([ratio(np.split(rng.permutation(pooled), sizes)) for _ in range(1000)])
    measured = ratio(groups)
    return {
        "ratio_largest_to_smallest_mean_distance": measured,
        "permutation_null": [null.low, null.high],
        "experiments_differ": bool(measured > null.high),
    }


def claim_equidistant(
    results: Mapping[str, ExperimentResult | None],
    controls: Mapping[str, Mapping[str, Any]] | None = None,
) -> Claim:
    """``controls`` maps a role to the CVs (``cv_pairwise_distance``, ``cv_norm``: arrays) of sets
    of untrained initialisations of its model; without one, iid gaussians are the control."""
    claim = Claim(
        "5",
        "All pairs of solutions after a fixed number of epochs appear to be roughly the same "
        "euclidean distance from the origin and from each other. This is true even with "
        "identical initializations, and pretraining before cloning.",
        "Experiments 2, 3 and 4: the coefficient of variation (std / mean) of the final "
        "solutions' pairwise distances and of their distances from the origin.",
        "supported if, in each experiment, both coefficients of variation are below the 95% band "
        "of the control: as many untrained initialisations of the same model (chance in high "
        "dimension already makes distances nearly equal)",
    )
    short = [
        r
        for r in SPREAD_ROLES
        if (found := results.get(r)) is None or len(found.run_indices()) < MIN_RUNS
    ]
    if short:
        return not_measured(
            claim, f"experiments 2, 3 and 4 each need {MIN_RUNS} or more runs ({', '.join(short)})"
        )
    tests, measured = [], {}
    for role in SPREAD_ROLES:
        result = results[role]
        assert result is not None
        measured[role] = spread(result)
        control = (controls or {}).get(role)
        if control is None:
            control = nulls.gaussian_spread(measured[role]["runs"], result.gram.size)
            how = f"iid gaussian vectors in R^{result.gram.size} (simulated exactly)"
        else:
            how = f"untrained initialisations of the same model, {len(control['cv_norm'])} sets"
        for statistic, what in (
            ("cv_pairwise_distance", "pairwise distances"),
            ("cv_norm", "distances from the origin"),
        ):
            tests.append(
                Test(
                    f"{statistic}_{role}",
                    f"coefficient of variation of the final solutions' {what} ({role})",
                    measured[role][statistic],
                    "below",
                    Reference(
                        "control",
                        f"the same for sets of {measured[role]['runs']} {how}",
                        nulls.band(control[statistic]),
                    ),
                )
            )
    measured["across experiments"] = _spread_across({r: measured[r] for r in SPREAD_ROLES})
    extra = results.get("shared-init-masks")
    if extra is not None and len(extra.run_indices()) >= 2:
        measured["shared-init-masks"] = spread(extra)
    return Claim(claim.id, claim.paper, claim.statement, claim.rule, tests, measured)

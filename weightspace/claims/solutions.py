"""Claims 4 and 5: where runs end up, relative to each other.

- 4 (different basins): the train-loss barrier on the straight line between two runs' final
  solutions, for runs from one initialisation with their own data order and dropout masks
  (experiment 3b, as the paper's runs most likely were) and clones of one partly trained model
  (experiment 4); experiment 3 (masks shared, the shuffle order alone varies) is reported beside.
  The control is the measurement's noise floor at equal loss: the line between each run's own
  last two snapshots (two points at the same loss that SGD connects), not a line down the
  descent, whose curvature would reject any barrier. Supported if, in both experiments, the mean
  barrier between runs lies above the controls' 95% band and is at least :data:`BARRIER_FLOOR`
  (the least effect: the controls' band is often exactly [0, 0], and a barrier of a thousandth
  of a nat above it is not a different basin; Frankle et al. 2020 likewise take error barriers
  under 2% as linear connectivity). Reported beside: the test disagreement of the two ends over
  their mean test error (Fort et al. 2019: 0 for one function; up to 2 when the two err on
  disjoint examples).
- 5 (equidistant solutions): the coefficient of variation of the final pairwise distances and of
  the distances from the origin, in experiments 2, 3 and 4, is at most :data:`CV_TOLERANCE`: the
  paper says "roughly the same". Untrained initialisations of the same model (or, without them,
  iid gaussian vectors in the model's dimension) are reported beside: chance in high dimension
  makes distances nearly equal, and whether training makes them more or less so. The experiments
  are also compared with each other (permutation null).
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
    tolerance,
)

BASIN_ROLES = ("shared-init-masks", "pretrained-clones")
# The least mean train-loss barrier (nats) that counts as a different basin, beside the control.
BARRIER_FLOOR = 0.01
# Tested the same way and reported beside, not deciding: experiment 3 (masks shared: the shuffle
# order alone varies, the paper's "shuffled order is sufficient").
BASIN_BESIDE = ("shared-init",)
SPREAD_ROLES = ("independent-inits", "shared-init", "pretrained-clones")
# Measured and reported beside the tests: experiment 2 (independent starts: the reference the
# basins of 3 and 4 are compared with).
ALSO_MEASURED = ("independent-inits",)
# Claim 5: "roughly the same" distance, as a coefficient of variation (std / mean), at most.
CV_TOLERANCE = 0.05
MIN_RUNS = 3


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


def _test_error(result: ExperimentResult | None, run: int, epoch: int) -> float:
    """The test error (1 - accuracy) of one snapshot, or nan where it is not recorded."""
    if result is None:
        return float("nan")
    for position, (r, e) in enumerate(zip(result.runs, result.epochs, strict=True)):
        if (r, e) == (run, epoch) and "test_accuracy" in result.metrics[position]:
            return 1.0 - float(result.metrics[position]["test_accuracy"])
    return float("nan")


def barrier_summary(
    report: BarrierReport, result: ExperimentResult | None = None
) -> dict[str, Any]:
    """Mean barriers, disagreement and distance between runs, and the controls' barriers;
    with the experiment's snapshots, the disagreement over the ends' mean test error too."""
    pairs, controls = report.of_kind("pair"), report.of_kind("control")
    error = _mean([(_test_error(result, *p.a) + _test_error(result, *p.b)) / 2 for p in pairs])
    disagreement = _mean([p.disagreement for p in pairs])
    return {
        "pairs": len(pairs),
        "mean_train_barrier": _mean([p.train_barrier for p in pairs]),
        "mean_test_barrier": _mean([p.test_barrier for p in pairs]),
        "mean_disagreement": disagreement,
        "mean_test_error": error,
        "disagreement_over_error": disagreement / error if error > 0 else float("nan"),
        "mean_distance": _mean([p.distance for p in pairs]),
        "control_train_barriers": [c.train_barrier for c in controls],
        "control_distances": [c.distance for c in controls],
    }


def _basin_test(role: str, summary: Mapping[str, Any]) -> Test:
    return Test(
        f"mean_train_barrier_{role}",
        f"mean train-loss barrier between the final solutions of {role}",
        summary["mean_train_barrier"],
        "above",
        Reference(
            "control",
            f"barriers on the {len(summary['control_train_barriers'])} lines between each run's "
            "own last two snapshots (equal loss, connected by SGD: the measurement's noise floor)",
            nulls.band(summary["control_train_barriers"]),
        ),
        BARRIER_FLOOR,
    )


def claim_different_basins(
    barriers: Mapping[str, BarrierReport | None],
    results: Mapping[str, ExperimentResult | None] | None = None,
) -> Claim:
    """``results`` (by role) give the ends' test errors, for the disagreement over error."""
    claim = Claim(
        "4",
        "Even once symmetry is broken, neural network error surfaces are neither convex nor "
        "quasi-convex but continue to diverge towards many different low error basins. Starting "
        "from the same initialization, but then feeding each network examples in shuffled order "
        "is sufficient to diverge each network along a different path.",
        "Experiments 3b and 4 (3 beside): the train-loss barrier between every two runs' final "
        "solutions (max over the line of the loss minus the straight interpolation of its end "
        "losses).",
        "supported if, in experiments 3b (one initialisation, own order and dropout masks) and 4 "
        "(pretrained clones), the mean barrier between runs is above the 95% band of the "
        "same-loss controls (each run's line between its own last two snapshots) and at least "
        f"{BARRIER_FLOOR} nats; experiment 3 (masks shared) is tested alike and reported beside",
    )
    missing = [r for r in BASIN_ROLES if barriers.get(r) is None]
    if missing:
        return not_measured(claim, f"no barriers for {', '.join(missing)}")
    tests, beside, measured = [], [], {}
    for role in (*BASIN_ROLES, *BASIN_BESIDE, *ALSO_MEASURED):
        if (report := barriers.get(role)) is None:
            continue
        summary = barrier_summary(report, (results or {}).get(role))
        measured[role] = summary
        enough = summary["pairs"] >= 1 and len(summary["control_train_barriers"]) >= 2
        if role in BASIN_ROLES and not enough:
            return not_measured(claim, f"{role} needs 2 or more runs with 2 or more snapshots")
        if role in BASIN_ROLES:
            tests.append(_basin_test(role, summary))
        elif role in BASIN_BESIDE and enough:
            beside.append(_basin_test(role, summary))
    return Claim(claim.id, claim.paper, claim.statement, claim.rule, tests, measured, "", beside)


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
        f"supported if, in each experiment, both coefficients of variation are at most "
        f'{CV_TOLERANCE:.0%} ("roughly the same"); as many untrained initialisations of the same '
        "model are reported beside (chance in high dimension already makes distances nearly equal)",
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
    tests, beside, measured = [], [], {}
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
            name = f"{statistic}_{role}"
            description = f"coefficient of variation of the final solutions' {what} ({role})"
            value = measured[role][statistic]
            tests.append(
                Test(
                    name,
                    description,
                    value,
                    "below",
                    tolerance(
                        CV_TOLERANCE,
                        f'"roughly the same": a spread of at most {CV_TOLERANCE:.0%} of the mean',
                    ),
                    CV_TOLERANCE,
                )
            )
            beside.append(
                Test(
                    f"{name}_vs_chance",
                    f"{description}, beside chance: below the band is more equal than chance",
                    value,
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
    return Claim(claim.id, claim.paper, claim.statement, claim.rule, tests, measured, "", beside)

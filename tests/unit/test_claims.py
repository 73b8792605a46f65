"""Each claim's rule against its own null (must give "not supported") and known positives
(power: a drift, an arc, a real 0.1-nat barrier, travel rather than confinement, roughly equal
distances must give "supported"), and each verdict's least effect."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from weightspace import nulls
from weightspace.analysis import ArrayVector, gram
from weightspace.claims import (
    CLAIM_IDS,
    BarrierReport,
    ExperimentResult,
    LineBetween,
    LineLoss,
    claim_different_basins,
    claim_equidistant,
    claim_few_components,
    claim_flat_regions,
    claim_line_monotone,
    claim_path_not_straight,
    evaluate_claims,
    summarise,
)
from weightspace.claims.dynamics import TRAVEL_EXPONENT_MIN
from weightspace.claims.paths import STRAIGHTNESS_MAX, TOP_FEW_EFFECT_MIN
from weightspace.claims.solutions import BARRIER_FLOOR, CV_TOLERANCE
from weightspace.spec import ExperimentSpec

SPEC = ExperimentSpec.model_validate(
    {"dataset": {"name": "digits"}, "model": {"kind": "mlp"}, "epochs": 20}
)
DIM = 400


def result(
    role: str,
    paths: dict[int, np.ndarray],
    losses: list[float] | None = None,
    gradients: list[dict[str, Any] | None] | None = None,
) -> ExperimentResult:
    runs, epochs, metrics, vectors = [], [], [], []
    for run, path in paths.items():
        for epoch, vector in enumerate(path):
            loss = losses[epoch] if losses else 1.0
            runs.append(run)
            epochs.append(epoch)
            metrics.append(
                {"train_loss": loss, "train_accuracy": 0.5, "test_loss": loss, "test_accuracy": 0.5}
            )
            vectors.append(vector)
    return ExperimentResult(
        role,
        role,
        SPEC,
        runs,
        epochs,
        metrics,
        gram([ArrayVector(v) for v in vectors]),
        gradients or [],
    )


def walk(seed: int, steps: int = 20, dim: int = DIM, start: np.ndarray | None = None) -> np.ndarray:
    rng = np.random.default_rng(seed)
    origin = np.zeros(dim) if start is None else start
    return origin + np.vstack([np.zeros(dim), np.cumsum(rng.normal(size=(steps, dim)), axis=0)])


def plane_curve(steps: int = 20, dim: int = DIM, noise: float = 0.01) -> np.ndarray:
    """A smooth curve in a 2-D plane plus a little isotropic noise: low-dimensional, curved."""
    t = np.linspace(0, 1, steps + 1)
    path = np.zeros((steps + 1, dim))
    path[:, 0], path[:, 1] = 10 * t, 4 * np.sin(3 * t)
    return path + noise * np.random.default_rng(9).normal(size=path.shape)


def drifted(seed: int, drift: float, dim: int = DIM, steps: int = 20) -> np.ndarray:
    """A random walk whose steps share a drift of ``drift`` times the noise's length."""
    rng = np.random.default_rng(seed)
    direction = np.zeros(dim)
    direction[0] = drift * np.sqrt(dim)
    return np.vstack([np.zeros(dim), np.cumsum(rng.normal(size=(steps, dim)) + direction, axis=0)])


def arc(degrees: float, steps: int = 20, dim: int = DIM, noise: float = 0.01) -> np.ndarray:
    """Points along a circular arc of ``degrees`` in a plane, with a little isotropic noise."""
    angles = np.radians(np.linspace(0.0, degrees, steps + 1))
    path = np.zeros((steps + 1, dim))
    path[:, 0], path[:, 1] = 10 * np.cos(angles), 10 * np.sin(angles)
    return path + noise * np.random.default_rng(11).normal(size=path.shape)


def confined(seed: int, steps: int = 20, dim: int = DIM, relaxation: float = 0.7) -> np.ndarray:
    """A stationary Ornstein-Uhlenbeck process: jitter near one point, forgetting where it was
    within ``relaxation`` snapshot intervals."""
    rng = np.random.default_rng(seed)
    rho = np.exp(-1.0 / relaxation)
    points = [rng.normal(size=dim) / np.sqrt(1 - rho**2)]
    for _ in range(steps):
        points.append(rho * points[-1] + rng.normal(size=dim))
    return np.vstack(points)


def gradient_record(norm: float, band: tuple[float, float]) -> dict[str, Any]:
    return {
        "norm": norm,
        "norm_with_weight_decay": norm,
        "null_band": list(band),
        "null_mean": sum(band) / 2,
        "null_samples": 1000,
        "chunks": 16,
    }


# --------------------------------------------------------------------------- claim 3


@pytest.mark.parametrize("seed", range(3))
def test_a_random_walk_does_not_support_few_components(seed: int) -> None:
    claim = claim_few_components(result("trajectory", {0: walk(seed)}))
    assert claim.verdict == "not supported"
    test = claim.tests[0]
    assert test.reference.kind == "null"
    # The finite-n null is the random walk's own: about 0.76 of the variance on 2 components.
    assert 0.7 < test.reference.band.low < test.value < test.reference.band.high + 0.05
    document = claim.to_dict()
    assert document["null"]["band"] == [test.reference.band.low, test.reference.band.high]
    assert document["value"] == test.value


def test_a_low_dimensional_trajectory_supports_few_components() -> None:
    claim = claim_few_components(result("trajectory", {0: plane_curve()}))
    assert claim.verdict == "supported"
    assert claim.tests[0].value > 0.99


def test_a_drift_passes_few_components_and_a_negligible_one_does_not() -> None:
    """Power: a drift of a third of the step length shows clearly. The least effect: in high
    dimension the walk's band is narrow, and a drift of a tenth of the step lies above it by
    a point or two of variance, short of the 5 points the rule asks for."""
    strong = claim_few_components(result("trajectory", {0: drifted(1, 0.3, dim=20_000)}))
    assert strong.verdict == "supported"
    weak = claim_few_components(result("trajectory", {0: drifted(1, 0.1, dim=20_000)}))
    test = weak.tests[0]
    assert test.value > test.reference.band.high  # beyond the band ...
    assert test.value < test.reference.band.mean + TOP_FEW_EFFECT_MIN  # ... not by enough
    assert weak.verdict == "not supported"
    effect = test.effect()
    assert effect["minimum"] == pytest.approx(TOP_FEW_EFFECT_MIN)
    assert 0 < effect["value"] < effect["minimum"]
    assert effect["interval"][0] <= effect["value"] <= effect["interval"][1]


def test_random_walks_rarely_pass_the_few_components_rule() -> None:
    passed = sum(
        claim_few_components(result("trajectory", {0: walk(100 + s)})).verdict == "supported"
        for s in range(20)
    )
    assert passed <= 3  # a 2.5% one-sided band: 0.5 expected in 20


def test_pooled_walks_are_the_null_of_joint_spectra() -> None:
    starts = np.random.default_rng(5).normal(size=DIM) * 3
    pooled = {r: walk(200 + r, steps=8, start=starts) for r in range(4)}
    joint = claim_few_components(
        result("trajectory", {0: walk(1)}), [result("shared-init", pooled)]
    ).measured["joint shared-init"]
    low, high = joint["top2_null"]
    assert low - 0.03 < joint["top2"] < high + 0.03
    assert joint["top2_null"][1] < 0.6  # four walks share the variance: far below one walk's 0.76


# --------------------------------------------------------------------------- claim 2


def test_a_nearly_straight_path_is_not_far_from_straight() -> None:
    """The null of 2b is the straight line: a straight path with noise must not pass, and a
    gentle 60-degree arc (straightness 0.95) is not "far" from it either."""
    straight = np.outer(np.arange(21.0), np.eye(DIM)[0]) + 0.01 * walk(6)
    for path in (straight, arc(60)):
        claim = claim_path_not_straight(result("trajectory", {0: path}))
        assert claim.verdict == "not supported"
        assert claim.tests[0].reference.kind == "control"
        assert claim.tests[0].reference.band.low == 1.0


@pytest.mark.parametrize("degrees", [180, 270])
def test_arcs_are_far_from_straight_though_straighter_than_noise(degrees: int) -> None:
    """Power: a half circle (straightness 2/pi) and three quarters of one pass, although both
    are far straighter than a random walk with their steps (reported beside)."""
    claim = claim_path_not_straight(result("trajectory", {0: arc(degrees)}))
    assert claim.verdict == "supported"
    assert claim.tests[0].value <= STRAIGHTNESS_MAX
    (beside,) = claim.beside
    assert beside.reference.kind == "null" and not beside.passed
    assert claim.measured["straighter_than_random_walks"]
    assert claim.to_dict()["beside"][0]["name"] == "straightness_vs_random_walk"


def test_a_random_walk_is_far_from_straight_and_inside_its_own_band() -> None:
    claim = claim_path_not_straight(result("trajectory", {0: walk(3)}))
    assert claim.verdict == "supported"
    (beside,) = claim.beside
    low, high = beside.reference.band.low, beside.reference.band.high
    assert low <= beside.value <= high + 0.02
    assert not claim.measured["straighter_than_random_walks"]


def test_the_line_is_judged_on_train_with_the_test_loss_beside() -> None:
    alphas = np.linspace(0, 1, 25).tolist()
    falling = [2.0 - a for a in alphas]
    assert claim_line_monotone(LineLoss(alphas, falling, falling)).verdict == "supported"
    bump = [2.0 - a + (0.2 if 10 <= i <= 12 else 0.0) for i, a in enumerate(alphas)]
    # A test-loss rise (overfitting near the solution) is reported, not deciding.
    overfit = claim_line_monotone(LineLoss(alphas, falling, bump))
    assert overfit.verdict == "supported"
    assert [t.name for t in overfit.tests] == ["line_train_rise"]
    assert [(t.name, t.passed) for t in overfit.beside] == [("line_test_rise", False)]
    # A train-loss rise is a barrier on the straight line: not supported.
    bumped = claim_line_monotone(LineLoss(alphas, bump, falling))
    assert bumped.verdict == "not supported"
    assert not bumped.tests[0].passed
    # A rise of 0.5% of the range would pass at the start loss's scale of old; it is judged on the range.
    few = claim_line_monotone(LineLoss(alphas[::3], falling[::3], falling[::3]))
    assert few.verdict == "not measured" and "25" in few.note


def test_the_line_rule_rejects_lines_like_its_control() -> None:
    alphas = np.linspace(0, 1, 25).tolist()
    hump = [1.0 + 2 * a * (1 - a) for a in alphas]  # a barrier, like lines between solutions
    control = BarrierReport(
        [
            LineBetween("pair", (0, 20), (r, 20), 10.0, LineLoss(alphas, hump, hump), 0.1)
            for r in range(1, 4)
        ]
    )
    claim = claim_line_monotone(LineLoss(alphas, hump, hump), control)
    assert claim.verdict == "not supported"
    assert claim.tests[0].reference.kind == "control"


# --------------------------------------------------------------------------- claim 1


def _flat_run(late_path: np.ndarray, final: dict[str, Any]) -> ExperimentResult:
    losses = [2.0 * 0.6**e for e in range(21)]
    return result("trajectory", {0: late_path}, losses, [None] * 20 + [final])


def test_a_critical_point_does_not_support_claim_1() -> None:
    straight = np.outer(np.arange(21.0), np.eye(DIM)[0]) + 0.01 * walk(6)
    at_critical_point = gradient_record(0.05, (0.03, 0.08))  # inside the sign-flip null
    claim = claim_flat_regions(_flat_run(straight, at_critical_point))
    assert claim.verdict == "not supported"
    passed = {t.name: t.passed for t in claim.tests}
    assert passed == {"loss_flat": True, "final_gradient_norm": False, "late_msd_exponent": True}


def test_jitter_near_a_point_does_not_support_claim_1() -> None:
    """The null of 1c: a process confined near one point (the MSD saturates with the lag)."""
    claim = claim_flat_regions(_flat_run(confined(7), gradient_record(0.5, (0.03, 0.08))))
    assert claim.verdict == "not supported"
    travel = next(t for t in claim.tests if t.name == "late_msd_exponent")
    assert not travel.passed and travel.value < TRAVEL_EXPONENT_MIN


@pytest.mark.parametrize("seed", range(3))
def test_diffusion_and_drift_keep_travelling(seed: int) -> None:
    """Power: free diffusion (exponent 1) and a drift (towards 2) are travel, not confinement."""
    for path in (walk(seed), drifted(seed, 0.3)):
        claim = claim_flat_regions(_flat_run(path, gradient_record(0.5, (0.03, 0.08))))
        travel = next(t for t in claim.tests if t.name == "late_msd_exponent")
        assert travel.passed and travel.value > 0.8
        assert claim.verdict == "supported"


def test_the_confined_null_saturates_and_tracks_its_relaxation_time() -> None:
    quick = nulls.band(nulls.confined_null(11, 50_000, 0.5))
    slow = nulls.band(nulls.confined_null(11, 50_000, 2.5))
    assert quick.high < 0.1 < slow.low and slow.high < TRAVEL_EXPONENT_MIN
    assert nulls.msd_exponent(walk(1) @ walk(1).T) == pytest.approx(1.0, abs=0.2)


def test_the_late_chord_scan_is_reported_beside_claim_1() -> None:
    straight = np.outer(np.arange(21.0), np.eye(DIM)[0]) + 0.01 * walk(6)
    alphas = np.linspace(0, 1, 25)
    chord = LineLoss(alphas.tolist(), (0.1 + 0.3 * alphas * (1 - alphas)).tolist())
    claim = claim_flat_regions(_flat_run(straight, gradient_record(0.5, (0.03, 0.08))), chord)
    scan = claim.measured["late_chord"]
    assert scan["train_barrier"] == pytest.approx(0.075)
    assert claim.measured["late_window_epochs"] == [10, 20]


def test_the_sign_flip_null_holds_for_mean_zero_gradients() -> None:
    inside = 0
    for seed in range(40):
        chunks = np.random.default_rng(seed).normal(size=(16, 50))
        band = nulls.sign_flip_band(chunks @ chunks.T, 1600)
        inside += band.low <= np.linalg.norm(chunks.sum(axis=0)) / 1600 <= band.high
    assert inside >= 34
    shifted = np.random.default_rng(1).normal(size=(16, 50)) + 1.0
    band = nulls.sign_flip_band(shifted @ shifted.T, 1600)
    assert np.linalg.norm(shifted.sum(axis=0)) / 1600 > band.high


# --------------------------------------------------------------------------- claims 4 and 5


def _barriers(pair_barrier: float, control_barriers: list[float]) -> BarrierReport:
    alphas = np.linspace(0, 1, 25)

    def hump(height: float) -> LineLoss:
        losses = (1.0 + 4 * height * alphas * (1 - alphas)).tolist()
        return LineLoss(alphas.tolist(), losses, losses)

    pairs = [
        LineBetween("pair", (r, 9), (r + 1, 9), 5.0, hump(pair_barrier), 0.1) for r in range(4)
    ]
    controls = [
        LineBetween("control", (r, 3), (r, 9), 5.0, hump(b), 0.0)
        for r, b in enumerate(control_barriers)
    ]
    return BarrierReport(pairs + controls)


def _basins(deciding: BarrierReport, clones: BarrierReport | None = None) -> dict[str, Any]:
    return {"shared-init-masks": deciding, "pretrained-clones": clones or deciding}


def test_barriers_like_the_controls_do_not_show_different_basins() -> None:
    controls = [0.01, 0.02, 0.015, 0.03, 0.02]
    claim = claim_different_basins(_basins(_barriers(0.02, controls)))
    assert claim.verdict == "not supported"
    assert claim.to_dict()["control"]["band"][1] <= 0.03
    high = claim_different_basins(_basins(_barriers(1.5, controls), _barriers(0.9, controls)))
    assert high.verdict == "supported"
    assert high.tests[0].value == pytest.approx(1.5, rel=1e-9)
    assert claim_different_basins({}).verdict == "not measured"


def test_a_real_tenth_of_a_nat_barrier_over_the_same_loss_control_is_a_different_basin() -> None:
    """Power: the same-loss controls (each run's last two snapshots) sit at the noise floor, so
    a real 0.1-nat barrier passes; the old control, a line down the descent with a 0.2-nat
    curvature "barrier", would have rejected it."""
    same_loss = [0.0, 0.0, 0.001, 0.0, 0.0]
    claim = claim_different_basins(_basins(_barriers(0.1, same_loss)))
    assert claim.verdict == "supported"
    assert [t.name for t in claim.tests] == [
        "mean_train_barrier_shared-init-masks",
        "mean_train_barrier_pretrained-clones",
    ]
    effect = claim.tests[0].effect()
    assert effect["value"] == pytest.approx(0.1 - np.mean(same_loss))
    assert effect["minimum"] == pytest.approx(BARRIER_FLOOR - np.mean(same_loss))
    descent = [0.2, 0.25, 0.18, 0.22, 0.3]
    assert claim_different_basins(_basins(_barriers(0.1, descent))).verdict == "not supported"


def test_experiment_3_is_tested_alike_and_reported_beside() -> None:
    flat = [0.0] * 5
    reports = {**_basins(_barriers(0.1, flat)), "shared-init": _barriers(0.002, flat)}
    claim = claim_different_basins(reports)
    assert claim.verdict == "supported"  # 3b and 4 decide
    (beside,) = claim.beside
    assert beside.name == "mean_train_barrier_shared-init" and not beside.passed
    assert "shared-init" in claim.measured


def test_disagreement_is_reported_over_the_ends_test_error() -> None:
    flat = [0.0] * 5
    paths = {r: np.outer(np.arange(10.0), np.eye(DIM)[r]) for r in range(5)}  # epochs 0-9
    clones = result("pretrained-clones", paths)
    metrics = [{**m, "test_accuracy": 0.8} for m in clones.metrics]
    clones = ExperimentResult(
        clones.role, clones.title, SPEC, clones.runs, clones.epochs, metrics, clones.gram
    )
    claim = claim_different_basins(_basins(_barriers(0.1, flat)), {"pretrained-clones": clones})
    summary = claim.measured["pretrained-clones"]
    assert summary["mean_test_error"] == pytest.approx(0.2)
    assert summary["disagreement_over_error"] == pytest.approx(0.1 / 0.2)


def test_a_negligible_barrier_over_flat_controls_is_not_a_different_basin() -> None:
    """Clones often sit on one linearly connected valley: their controls' band is [0, 0], and a
    barrier of a thousandth of a nat above it (as measured on MNIST) must not pass."""
    flat = [0.0, 0.0, 0.0, 0.0, 0.0]
    tiny = claim_different_basins(_basins(_barriers(1.5, flat), _barriers(0.001, flat)))
    assert tiny.tests[1].reference.band.high == 0.0 and tiny.tests[1].value > 0.0
    assert not tiny.tests[1].passed and tiny.verdict == "not supported"
    clear = claim_different_basins(_basins(_barriers(1.5, flat), _barriers(0.2, flat)))
    assert clear.verdict == "supported"
    assert clear.to_dict()["tests"][1]["bound"] == BARRIER_FLOOR


def _spread_at(radii: dict[int, float], dim: int = DIM) -> np.ndarray:
    return {r: np.stack([np.zeros(dim), radius * np.eye(dim)[r]]) for r, radius in radii.items()}


def test_unequal_distances_do_not_support_claim_5() -> None:
    """The null of 5: solutions at clearly different distances from the origin and each other."""
    radii = dict(enumerate([1.0, 1.5, 2.0, 2.5, 3.0]))
    results = {
        role: result(role, _spread_at(radii))
        for role in ("independent-inits", "shared-init", "pretrained-clones")
    }
    claim = claim_equidistant(results)
    assert claim.verdict == "not supported"
    assert all(t.reference.kind == "tolerance" and t.bound == CV_TOLERANCE for t in claim.tests)


def test_roughly_equal_distances_support_claim_5_with_chance_beside() -> None:
    """Power: distances within 3% of each other (the paper's "roughly") pass, however they
    compare with chance, which is reported beside; exact equality passes too."""
    radii = dict(enumerate([3.0, 3.1, 2.95, 3.05, 2.9]))
    roles = ("independent-inits", "shared-init", "pretrained-clones")
    rough = claim_equidistant({role: result(role, _spread_at(radii)) for role in roles})
    assert rough.verdict == "supported"
    assert all(0.0 < t.value <= CV_TOLERANCE for t in rough.tests)
    assert all(t.reference.kind == "control" for t in rough.beside)
    assert len(rough.beside) == len(rough.tests)
    exact = claim_equidistant(
        {role: result(role, _spread_at(dict.fromkeys(range(5), 3.0))) for role in roles}
    )
    assert exact.verdict == "supported"


def test_experiments_at_different_distances_are_told_apart() -> None:
    rng = np.random.default_rng(2)
    results = {
        role: result(role, {r: scale * rng.normal(size=(2, DIM)) for r in range(5)})
        for role, scale in (
            ("independent-inits", 3.0),
            ("shared-init", 1.0),
            ("pretrained-clones", 1.0),
        )
    }
    across = claim_equidistant(results).measured["across experiments"]
    assert across["experiments_differ"] and across["ratio_largest_to_smallest_mean_distance"] > 2


# --------------------------------------------------------------------------- all, and seeds


def test_missing_experiments_are_not_measured() -> None:
    claims = evaluate_claims({}, None)
    assert [c.id for c in claims] == list(CLAIM_IDS)
    assert {c.verdict for c in claims} == {"not measured"}
    assert all(c.rule and c.note and c.paper for c in claims)


def test_seeds_give_intervals_and_stability() -> None:
    per_seed = [[claim_few_components(result("trajectory", {0: walk(s)}))] for s in range(3)]
    per_seed.append([claim_few_components(result("trajectory", {0: plane_curve()}))])
    (summary,) = summarise(per_seed)
    assert summary["verdict"] == "not supported"
    assert summary["stability"] == {
        "seeds": 4,
        "agree": 3,
        "verdicts": {"supported": 1, "not supported": 3},
    }
    values = summary["values"]
    low, high = summary["interval"]
    assert summary["value"] == pytest.approx(np.mean(values))
    assert low < summary["value"] < high
    assert len(summary["null"]["bands"]) == 4
    # The effect size over the seeds: mean, t-interval and the least effect that passes.
    effect = summary["tests"][0]["effect"]
    assert effect["value"] == pytest.approx(np.mean(effect["values"]))
    assert effect["interval"][0] < effect["value"] < effect["interval"][1]
    assert effect["minimum"] == pytest.approx(TOP_FEW_EFFECT_MIN)
    assert summary["beside"] == []

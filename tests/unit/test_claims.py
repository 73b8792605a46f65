"""Each claim's rule against its own null (must give "not supported") and a clear positive."""

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
from weightspace.claims.solutions import BARRIER_FLOOR
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


def test_the_path_of_a_random_walk_is_not_far_from_straight_by_its_null() -> None:
    claim = claim_path_not_straight(result("trajectory", {0: walk(3)}))
    assert claim.verdict == "not supported"
    low, high = claim.tests[0].reference.band.low, claim.tests[0].reference.band.high
    assert low <= claim.tests[0].value <= high + 0.02


def test_a_back_and_forth_path_is_far_from_straight() -> None:
    rng = np.random.default_rng(4)
    direction = np.zeros(DIM)
    direction[0] = 1.0
    steps = [direction * (1 if i % 2 == 0 else -1) + 0.01 * rng.normal(size=DIM) for i in range(20)]
    path = np.vstack([np.zeros(DIM), np.cumsum(steps, axis=0)])
    claim = claim_path_not_straight(result("trajectory", {0: path}))
    assert claim.verdict == "supported" and claim.tests[0].value < 0.1


def test_the_line_is_judged_on_train_and_test_with_enough_points() -> None:
    alphas = np.linspace(0, 1, 25).tolist()
    falling = [2.0 - a for a in alphas]
    assert claim_line_monotone(LineLoss(alphas, falling, falling)).verdict == "supported"
    bump = [2.0 - a + (0.2 if 10 <= i <= 12 else 0.0) for i, a in enumerate(alphas)]
    bumped = claim_line_monotone(LineLoss(alphas, falling, bump))
    assert bumped.verdict == "not supported"
    assert [t.passed for t in bumped.tests] == [True, False]
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
    assert passed == {"loss_flat": True, "final_gradient_norm": False, "late_straightness": True}


def test_jitter_without_direction_does_not_support_claim_1() -> None:
    claim = claim_flat_regions(_flat_run(walk(7), gradient_record(0.5, (0.03, 0.08))))
    assert claim.verdict == "not supported"
    assert not next(t for t in claim.tests if t.name == "late_straightness").passed


def test_large_moves_away_from_critical_points_support_claim_1() -> None:
    straight = np.outer(np.arange(21.0), np.eye(DIM)[0]) + 0.01 * walk(6)
    claim = claim_flat_regions(_flat_run(straight, gradient_record(0.5, (0.03, 0.08))))
    assert claim.verdict == "supported"
    assert claim.measured["distance_per_epoch_last_quarter"] == pytest.approx(1.0, rel=0.1)
    unflat = result(
        "trajectory",
        {0: straight},
        [2.0 - 0.09 * e for e in range(21)],
        [None] * 20 + [gradient_record(0.5, (0.03, 0.08))],
    )
    assert claim_flat_regions(unflat).verdict == "not supported"
    missing = claim_flat_regions(result("trajectory", {0: straight}))
    assert missing.verdict == "not measured" and "gradient" in missing.note


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


def test_barriers_like_the_controls_do_not_show_different_basins() -> None:
    controls = [0.01, 0.02, 0.015, 0.03, 0.02]
    claim = claim_different_basins(
        {"shared-init": _barriers(0.02, controls), "pretrained-clones": _barriers(0.02, controls)}
    )
    assert claim.verdict == "not supported"
    assert claim.to_dict()["control"]["band"][1] <= 0.03
    high = claim_different_basins(
        {"shared-init": _barriers(1.5, controls), "pretrained-clones": _barriers(0.9, controls)}
    )
    assert high.verdict == "supported"
    assert high.tests[0].value == pytest.approx(1.5, rel=1e-9)
    assert claim_different_basins({}).verdict == "not measured"


def test_a_negligible_barrier_over_flat_controls_is_not_a_different_basin() -> None:
    """Clones often sit on one linearly connected valley: their controls' band is [0, 0], and a
    barrier of a thousandth of a nat above it (as measured on MNIST) must not pass."""
    flat = [0.0, 0.0, 0.0, 0.0, 0.0]
    tiny = claim_different_basins(
        {"shared-init": _barriers(1.5, flat), "pretrained-clones": _barriers(0.001, flat)}
    )
    assert tiny.tests[1].reference.band.high == 0.0 and tiny.tests[1].value > 0.0
    assert not tiny.tests[1].passed and tiny.verdict == "not supported"
    clear = claim_different_basins(
        {"shared-init": _barriers(1.5, flat), "pretrained-clones": _barriers(0.2, flat)}
    )
    assert clear.verdict == "supported"
    assert clear.to_dict()["tests"][1]["bound"] == BARRIER_FLOOR


def test_chance_equidistance_does_not_support_claim_5() -> None:
    rng = np.random.default_rng(8)
    gaussian = {
        role: result(role, {r: rng.normal(size=(2, DIM)) for r in range(5)})
        for role in ("independent-inits", "shared-init", "pretrained-clones")
    }
    claim = claim_equidistant(gaussian)
    assert claim.verdict == "not supported"
    assert all(t.reference.kind == "control" for t in claim.tests)
    orthogonal = np.eye(5, DIM) * 3.0  # exactly equal distances: beyond what chance gives
    exact = {
        role: result(role, {r: np.stack([np.zeros(DIM), orthogonal[r]]) for r in range(5)})
        for role in gaussian
    }
    assert claim_equidistant(exact).verdict == "supported"


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

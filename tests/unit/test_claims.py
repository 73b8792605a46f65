"""The claims' numbers and verdicts on trajectories whose answers are known."""

from __future__ import annotations

import numpy as np

from weightspace.analysis import ArrayVector, gram
from weightspace.claims import (
    ExperimentResult,
    LineLoss,
    claim_equidistant,
    claim_few_components,
    claim_identical_starts_diverge,
    claim_loss_flat_weights_move,
    claim_straight_line_vs_path,
    evaluate_claims,
    random_walk_ratio,
)
from weightspace.spec import ExperimentSpec

SPEC = ExperimentSpec.model_validate(
    {"dataset": {"name": "digits"}, "model": {"kind": "mlp"}, "epochs": 20}
)


def result(
    role: str, paths: dict[int, np.ndarray], losses: dict[int, list[float]] | None = None
) -> ExperimentResult:
    runs, epochs, metrics, vectors = [], [], [], []
    for run, path in paths.items():
        for epoch, vector in enumerate(path):
            loss = losses[run][epoch] if losses else 1.0
            runs.append(run)
            epochs.append(epoch)
            metrics.append(
                {"train_loss": loss, "train_accuracy": 0.5, "test_loss": loss, "test_accuracy": 0.5}
            )
            vectors.append(vector)
    return ExperimentResult(
        role, role, SPEC, runs, epochs, metrics, gram([ArrayVector(v) for v in vectors])
    )


def test_loss_flat_while_weights_move() -> None:
    rng = np.random.default_rng(0)
    path = np.cumsum(rng.normal(size=(21, 500)), axis=0)  # steady steps
    flat = [2.0 * 0.5**e if e < 10 else 2.0 * 0.5**10 for e in range(21)]
    claim = claim_loss_flat_weights_move(result("trajectory", {0: path}, {0: flat}))
    assert claim.verdict == "supported"
    assert claim.measured["relative_loss_change_last_quarter"] == 0
    assert 0.5 < claim.measured["step_ratio"] < 2
    decaying = claim_loss_flat_weights_move(
        result("trajectory", {0: path}, {0: [2.0 - 0.09 * e for e in range(21)]})
    )
    assert decaying.verdict == "not supported" and decaying.measured["loss_change_ratio"] > 1


def test_straight_line_and_curved_path() -> None:
    angles = np.linspace(0, np.pi, 21)
    circle = np.stack([np.cos(angles), np.sin(angles)], axis=1)  # half circle: straightness 2/pi
    padded = np.concatenate([circle, np.zeros((21, 8))], axis=1)
    trajectory = result("trajectory", {0: padded})
    monotone = LineLoss([0, 0.5, 1], [2.0, 1.0, 0.5])
    claim = claim_straight_line_vs_path(trajectory, monotone)
    assert abs(claim.measured["straightness"] - 2 / np.pi) < 0.01
    assert claim.verdict == "not supported"  # 0.64 is not "far from straight" by the 0.5 threshold
    spiral = np.cumsum(np.random.default_rng(1).normal(size=(21, 200)), axis=0)
    assert (
        claim_straight_line_vs_path(result("trajectory", {0: spiral}), monotone).verdict
        == "supported"
    )
    bump = LineLoss([0, 0.5, 1], [2.0, 2.5, 0.5])
    bumped = claim_straight_line_vs_path(result("trajectory", {0: spiral}), bump)
    assert bumped.verdict == "not supported" and bumped.measured["max_relative_rise"] == 0.25


def test_few_components_against_the_random_walk_null() -> None:
    walk = np.cumsum(np.random.default_rng(2).normal(size=(200, 3000)), axis=0)
    claim = claim_few_components(result("trajectory", {0: walk}))
    assert claim.verdict == "supported"
    assert abs(claim.measured["explained_variance_ratio"][0] - random_walk_ratio(1)) < 0.08
    assert abs(claim.measured["random_walk_top2"] - 0.76) < 0.01


def test_identical_starts_diverge_or_not() -> None:
    rng = np.random.default_rng(3)
    start = rng.normal(size=300)
    steps = {
        r: np.vstack([np.zeros(300), np.cumsum(rng.normal(size=(5, 300)), axis=0)])
        for r in range(4)
    }
    apart = {r: start + steps[r] for r in range(4)}  # same start, independent walks
    claim = claim_identical_starts_diverge(result("shared-init", apart))
    assert claim.measured["initial_max_pairwise_distance"] == 0
    assert claim.verdict == "supported" and claim.measured["ratio"] > 1
    together = {r: apart[0] for r in range(4)}
    assert (
        claim_identical_starts_diverge(result("shared-init", together)).verdict == "not supported"
    )


def test_equidistant_solutions() -> None:
    basis = np.eye(5, 40) * 3.0  # orthogonal, same norm: all pairs at the same distance
    paths = {r: np.stack([np.zeros(40) + 0.01 * r, basis[r]]) for r in range(5)}
    results = {
        role: result(role, paths)
        for role in ("independent-inits", "shared-init", "pretrained-clones")
    }
    claim = claim_equidistant(results)
    assert claim.verdict == "supported"
    assert all(
        m["cv_pairwise_distance"] < 1e-9 and m["cv_norm"] < 1e-9 for m in claim.measured.values()
    )
    skewed = dict(paths)
    skewed[0] = np.stack([np.zeros(40), basis[0] * 5])
    results["shared-init"] = result("shared-init", skewed)
    assert claim_equidistant(results).verdict == "not supported"


def test_missing_experiments_are_not_measured() -> None:
    claims = evaluate_claims({}, None)
    assert [c.id for c in claims] == [1, 2, 3, 4, 5]
    assert {c.verdict for c in claims} == {"not measured"}
    assert all(c.threshold and c.note for c in claims)

"""The paper's five claims, each checked by numbers computed from a reproduction's snapshots.

Inputs are plain data (:class:`ExperimentResult`: the snapshots' metrics and Gram matrix; and
:class:`LineLoss`: the loss along the straight line from initialisation to solution); every
verdict comes with the figures it rests on and the threshold it applies, stated in words.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from weightspace.analysis import Gram, pca, trajectory_metrics
from weightspace.spec import ExperimentSpec

Verdict = Literal["supported", "not supported", "not measured"]


@dataclass(frozen=True)
class ExperimentResult:
    """One finished experiment of a reproduction: its snapshots (ordered by run, then epoch)."""

    role: str
    title: str
    spec: ExperimentSpec
    runs: Sequence[int]  # per snapshot
    epochs: Sequence[int]  # per snapshot
    metrics: Sequence[Mapping[str, float]]  # per snapshot: train/test loss and accuracy
    gram: Gram

    def run_indices(self) -> dict[int, list[int]]:
        """Positions of each run's snapshots, in epoch order."""
        indices: dict[int, list[int]] = {}
        for i, run in enumerate(self.runs):
            indices.setdefault(run, []).append(i)
        return indices

    def final_indices(self) -> list[int]:
        """Each run's last snapshot."""
        return [positions[-1] for positions in self.run_indices().values()]


@dataclass(frozen=True)
class LineLoss:
    """Train loss at evenly spaced points ``(1 - a) * init + a * solution``, ``a`` in [0, 1]."""

    alphas: Sequence[float]
    train_loss: Sequence[float]


@dataclass(frozen=True)
class Claim:
    id: int
    statement: str
    verdict: Verdict
    threshold: str
    measured: dict[str, Any] = field(default_factory=dict)
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# Thresholds, each stated in the claim's text too.
LOSS_FLAT_RATIO = 0.2  # last-quarter relative loss change / first-quarter one, at most
STEP_KEEPS_MOVING_RATIO = 0.2  # last-quarter mean step / first-quarter mean step, at least
LINE_MONOTONE_TOLERANCE = 1e-3  # allowed rise between line points, relative to the start loss
STRAIGHTNESS_FAR = 0.5  # displacement / path length below this is "far from straight"
TOP2_MOST = 0.5
TOP10_MOST = 0.9
DIVERGENCE_RATIO = 0.5  # final pairwise distance / distance travelled, at least
EQUIDISTANT_CV = 0.1  # coefficient of variation of pairwise distances and of norms, at most


def random_walk_ratio(k: int) -> float:
    """Expected share of variance of component ``k`` (1-based) for an isotropic random walk."""
    return 6 / (math.pi**2 * k**2)


def _not_measured(claim_id: int, statement: str, threshold: str, why: str) -> Claim:
    return Claim(claim_id, statement, "not measured", threshold, {}, why)


def _verdict(ok: bool) -> Verdict:
    return "supported" if ok else "not supported"


def _quarters(epochs: Sequence[int]) -> tuple[list[int], list[int]]:
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


def claim_loss_flat_weights_move(trajectory: ExperimentResult | None) -> Claim:
    statement = "Loss flattens while the weights keep travelling."
    threshold = (
        f"supported if, over the last quarter of training, the relative change of the train loss is at most "
        f"{LOSS_FLAT_RATIO} times that over the first quarter, while the mean step length per epoch is at least "
        f"{STEP_KEEPS_MOVING_RATIO} times that over the first quarter"
    )
    if trajectory is None or len(trajectory.epochs) < 4:
        return _not_measured(1, statement, threshold, "experiment 1 has too few snapshots")
    run = trajectory.run_indices()[0]
    epochs = [trajectory.epochs[i] for i in run]
    loss = [trajectory.metrics[i]["train_loss"] for i in run]
    steps = trajectory_metrics(trajectory.gram, run).step_length
    first, last = _quarters(epochs)

    def relative_change(span: list[int]) -> float:
        return abs(loss[span[0]] - loss[span[-1]]) / loss[span[0]]

    def step_per_epoch(span: list[int]) -> float:
        return float(sum(steps[span[1:]]) / (epochs[span[-1]] - epochs[span[0]]))

    loss_ratio = relative_change(last) / max(relative_change(first), 1e-12)
    step_ratio = step_per_epoch(last) / step_per_epoch(first)
    measured = {
        "first_quarter_epochs": [epochs[first[0]], epochs[first[-1]]],
        "last_quarter_epochs": [epochs[last[0]], epochs[last[-1]]],
        "relative_loss_change_first_quarter": relative_change(first),
        "relative_loss_change_last_quarter": relative_change(last),
        "loss_change_ratio": loss_ratio,
        "step_per_epoch_first_quarter": step_per_epoch(first),
        "step_per_epoch_last_quarter": step_per_epoch(last),
        "step_ratio": step_ratio,
    }
    ok = loss_ratio <= LOSS_FLAT_RATIO and step_ratio >= STEP_KEEPS_MOVING_RATIO
    return Claim(1, statement, _verdict(ok), threshold, measured)


def claim_straight_line_vs_path(
    trajectory: ExperimentResult | None, line: LineLoss | None
) -> Claim:
    statement = (
        "The straight line from initialisation to solution has monotonically decreasing loss, "
        "while the path actually taken is far from straight."
    )
    threshold = (
        f"supported if the train loss never rises along the line by more than {LINE_MONOTONE_TOLERANCE} "
        f"of its value at the initialisation, and the path's straightness (displacement / path length) "
        f"is below {STRAIGHTNESS_FAR}"
    )
    if trajectory is None or line is None or len(trajectory.epochs) < 2:
        return _not_measured(
            2, statement, threshold, "experiment 1 or the line evaluation is missing"
        )
    losses = np.asarray(line.train_loss, dtype=float)
    rises = np.diff(losses)
    max_rise = float(max(rises.max(), 0.0)) / losses[0]
    run = trajectory.run_indices()[0]
    metrics = trajectory_metrics(trajectory.gram, run)
    straightness = float(metrics.straightness[-1])
    measured = {
        "alphas": list(line.alphas),
        "line_train_loss": losses.tolist(),
        "max_relative_rise": max_rise,
        "displacement": float(metrics.displacement[-1]),
        "path_length": float(metrics.path_length[-1]),
        "straightness": straightness,
    }
    ok = max_rise <= LINE_MONOTONE_TOLERANCE and straightness < STRAIGHTNESS_FAR
    return Claim(2, statement, _verdict(ok), threshold, measured)


def claim_few_components(trajectory: ExperimentResult | None) -> Claim:
    statement = "A few principal components explain most of the variance of a trajectory."
    threshold = (
        f"supported if the top 2 components explain at least {TOP2_MOST:.0%} and the top 10 at least "
        f"{TOP10_MOST:.0%} of the variance of experiment 1's trajectory; the random-walk null model "
        "(component k explains about 6/(pi^2 k^2)) is shown for comparison"
    )
    if trajectory is None or len(trajectory.epochs) < 3:
        return _not_measured(3, statement, threshold, "experiment 1 has too few snapshots")
    result = pca(trajectory.gram)
    cumulative = result.cumulative_variance_ratio
    top2 = float(cumulative[min(1, len(cumulative) - 1)])
    top10 = float(cumulative[min(9, len(cumulative) - 1)])
    null = [random_walk_ratio(k) for k in range(1, 11)]
    measured = {
        "snapshots": len(trajectory.epochs),
        "explained_variance_ratio": result.explained_variance_ratio[:10].tolist(),
        "top2": top2,
        "top10": top10,
        "random_walk_top2": sum(null[:2]),
        "random_walk_top10": sum(null),
    }
    return Claim(
        3, statement, _verdict(top2 >= TOP2_MOST and top10 >= TOP10_MOST), threshold, measured
    )


def claim_identical_starts_diverge(shared_init: ExperimentResult | None) -> Claim:
    statement = "Runs from the same initialisation with different data orders diverge."
    threshold = (
        f"supported if, at the final epoch, the mean distance between the runs is at least "
        f"{DIVERGENCE_RATIO} times the mean distance each travelled from the shared initialisation"
    )
    if shared_init is None or len(shared_init.run_indices()) < 2:
        return _not_measured(4, statement, threshold, "experiment 3 has fewer than 2 runs")
    starts = [positions[0] for positions in shared_init.run_indices().values()]
    finals = shared_init.final_indices()
    distances = shared_init.gram.distances()
    pairwise = distances[np.ix_(finals, finals)][np.triu_indices(len(finals), 1)]
    travelled = np.array([distances[s, f] for s, f in zip(starts, finals, strict=True)])
    start_spread = float(distances[np.ix_(starts, starts)].max())
    ratio = float(pairwise.mean() / travelled.mean())
    measured = {
        "initial_max_pairwise_distance": start_spread,
        "final_mean_pairwise_distance": float(pairwise.mean()),
        "mean_distance_travelled": float(travelled.mean()),
        "ratio": ratio,
    }
    return Claim(4, statement, _verdict(ratio >= DIVERGENCE_RATIO), threshold, measured)


def _spread(result: ExperimentResult) -> dict[str, float]:
    finals = result.final_indices()
    final = result.gram.subset(finals)
    pairwise = final.distances()[np.triu_indices(len(finals), 1)]
    norms = final.norms()
    return {
        "epoch": int(result.epochs[finals[0]]),
        "mean_pairwise_distance": float(pairwise.mean()),
        "cv_pairwise_distance": float(pairwise.std() / pairwise.mean()),
        "mean_norm": float(norms.mean()),
        "cv_norm": float(norms.std() / norms.mean()),
    }


def claim_equidistant(results: Mapping[str, ExperimentResult | None]) -> Claim:
    statement = (
        "After a fixed number of epochs, all pairs of solutions are roughly the same distance from each "
        "other and from the origin (experiments 2, 3 and 4 alike)."
    )
    threshold = (
        f"supported if, in each of experiments 2, 3 and 4, the coefficient of variation (std / mean) of the "
        f"final pairwise distances and that of the final distances from the origin are at most {EQUIDISTANT_CV}"
    )
    roles = ("independent-inits", "shared-init", "pretrained-clones")
    if any(results.get(role) is None or len(results[role].run_indices()) < 3 for role in roles):  # type: ignore[union-attr]
        return _not_measured(
            5, statement, threshold, "experiments 2, 3 and 4 each need 3 or more finished runs"
        )
    measured = {role: _spread(results[role]) for role in roles}  # type: ignore[arg-type]
    ok = all(
        m["cv_pairwise_distance"] <= EQUIDISTANT_CV and m["cv_norm"] <= EQUIDISTANT_CV
        for m in measured.values()
    )
    return Claim(5, statement, _verdict(ok), threshold, measured)


def evaluate_claims(
    results: Mapping[str, ExperimentResult | None], line: LineLoss | None
) -> list[Claim]:
    """All five claims from the four experiments (keyed by preset role) and the line evaluation."""
    trajectory = results.get("trajectory")
    return [
        claim_loss_flat_weights_move(trajectory),
        claim_straight_line_vs_path(trajectory, line),
        claim_few_components(trajectory),
        claim_identical_starts_diverge(results.get("shared-init")),
        claim_equidistant(results),
    ]

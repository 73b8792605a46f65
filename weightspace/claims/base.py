"""The vocabulary of a verdict: the measured data, a test against a null or control, a claim.

Inputs are plain data (:class:`ExperimentResult`: the snapshots' metrics and Gram matrix;
:class:`LineLoss`: losses along a straight line in weight space; :class:`BarrierReport`: the
lines between an experiment's solutions). A :class:`Test` is one statistic beside the band of a
null model or a control; a :class:`Claim` is "supported" only when every one of its tests lies
beyond its band in the claimed direction, "not supported" otherwise, and "not measured" (with the
reason) when a test cannot be computed.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from weightspace.analysis import Gram
from weightspace.nulls import Band
from weightspace.spec import ExperimentSpec

Verdict = Literal["supported", "not supported", "not measured"]
VERDICTS: tuple[Verdict, ...] = ("supported", "not supported", "not measured")
Direction = Literal["above", "below"]
ReferenceKind = Literal["null", "control", "tolerance"]


@dataclass(frozen=True)
class ExperimentResult:
    """One finished experiment of a reproduction: its snapshots (ordered by run, then epoch).

    ``gradients`` holds, per snapshot, the full-batch gradient record the worker stored with it
    (:meth:`weightspace.landscape.GradientNorms.to_dict`), or ``None`` where none was recorded;
    ``vector`` reads a snapshot's parameter vector by position (for lines and barriers).
    """

    role: str
    title: str
    spec: ExperimentSpec
    runs: Sequence[int]  # per snapshot
    epochs: Sequence[int]  # per snapshot
    metrics: Sequence[Mapping[str, float]]  # per snapshot: train/test loss and accuracy
    gram: Gram
    gradients: Sequence[Mapping[str, Any] | None] = ()
    vector: Callable[[int], np.ndarray] | None = field(default=None, compare=False, repr=False)

    def run_indices(self) -> dict[int, list[int]]:
        """Positions of each run's snapshots, in epoch order."""
        indices: dict[int, list[int]] = {}
        for i, run in enumerate(self.runs):
            indices.setdefault(run, []).append(i)
        return indices

    def final_indices(self) -> list[int]:
        """Each run's last snapshot."""
        return [positions[-1] for positions in self.run_indices().values()]

    def gradient(self, position: int) -> Mapping[str, Any] | None:
        return self.gradients[position] if position < len(self.gradients) else None


@dataclass(frozen=True)
class LineLoss:
    """Losses (dropout off) at evenly spaced points ``(1 - a) * start + a * end``, ``a`` in [0, 1]."""

    alphas: Sequence[float]
    train_loss: Sequence[float]
    test_loss: Sequence[float] = ()

    def to_dict(self) -> dict[str, list[float]]:
        return {
            "alphas": list(self.alphas),
            "train_loss": list(self.train_loss),
            "test_loss": list(self.test_loss),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LineLoss:
        return cls(data["alphas"], data["train_loss"], data.get("test_loss", ()))


def barrier(losses: Sequence[float]) -> float:
    """Largest excess of the loss over the straight interpolation of its two end values (>= 0)."""
    values = np.asarray(losses, dtype=np.float64)
    alphas = np.linspace(0.0, 1.0, len(values))
    chord = (1 - alphas) * values[0] + alphas * values[-1]
    return float(max((values - chord).max(), 0.0))


def relative_rise(losses: Sequence[float]) -> float:
    """Largest rise of the loss along the line (any point above an earlier one), over its range."""
    values = np.asarray(losses, dtype=np.float64)
    spread = float(values.max() - values.min())
    if spread <= 0:
        return 0.0
    rise = values - np.minimum.accumulate(values)
    return float(rise.max() / spread)


@dataclass(frozen=True)
class LineBetween:
    """The line between two snapshots ``(run, epoch)`` of one experiment, with its barriers."""

    kind: Literal["pair", "control"]  # pair: two runs' final solutions; control: one run's own
    a: tuple[int, int]
    b: tuple[int, int]
    distance: float
    line: LineLoss
    disagreement: float  # share of test examples the two ends classify differently

    @property
    def train_barrier(self) -> float:
        return barrier(self.line.train_loss)

    @property
    def test_barrier(self) -> float:
        return barrier(self.line.test_loss) if self.line.test_loss else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "a": {"run": self.a[0], "epoch": self.a[1]},
            "b": {"run": self.b[0], "epoch": self.b[1]},
            "distance": self.distance,
            "train_barrier": self.train_barrier,
            "test_barrier": self.test_barrier,
            "disagreement": self.disagreement,
            "line": self.line.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LineBetween:
        return cls(
            data["kind"],
            (data["a"]["run"], data["a"]["epoch"]),
            (data["b"]["run"], data["b"]["epoch"]),
            data["distance"],
            LineLoss.from_dict(data["line"]),
            data["disagreement"],
        )


@dataclass(frozen=True)
class BarrierReport:
    """Lines between every pair of an experiment's final solutions, and the same-run controls."""

    lines: Sequence[LineBetween]

    def of_kind(self, kind: str) -> list[LineBetween]:
        return [line for line in self.lines if line.kind == kind]

    def to_dict(self) -> dict[str, Any]:
        return {"lines": [line.to_dict() for line in self.lines]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BarrierReport:
        return cls([LineBetween.from_dict(line) for line in data["lines"]])


@dataclass(frozen=True)
class Reference:
    """What chance (a null model) or a control gives for a statistic, as a 95% band."""

    kind: ReferenceKind
    description: str  # what it is and how it was obtained
    band: Band

    def to_dict(self) -> dict[str, Any]:
        return {"description": self.description, **self.band.to_dict()}


def tolerance(bound: float, description: str) -> Reference:
    """A fixed bound, for a condition that no null can calibrate (stated as such)."""
    return Reference("tolerance", description, Band(bound, bound, bound, 0))


@dataclass(frozen=True)
class Test:
    """One statistic, the direction the claim predicts, and the band it must lie beyond."""

    name: str
    description: str
    value: float
    direction: Direction
    reference: Reference
    # A stated tolerance the value must also meet, on the claimed side: at most ``bound`` for
    # "below", at least ``bound`` for "above".
    bound: float | None = None

    @property
    def passed(self) -> bool:
        if not np.isfinite(self.value):
            return False
        band = self.reference.band
        if self.direction == "above":
            return self.value > band.high and (self.bound is None or self.value >= self.bound)
        return self.value < band.low and (self.bound is None or self.value <= self.bound)

    def effect(self) -> dict[str, Any]:
        """The effect size: how far the value lies from the reference's mean, positive in the
        claimed direction; its 95% interval from the reference's band (the value beside each
        edge); and the least effect that passes (the far edge of the band, or ``bound``)."""
        band = self.reference.band
        sign = 1.0 if self.direction == "above" else -1.0
        edge = band.high if self.direction == "above" else band.low
        needed = edge if self.bound is None else sign * max(sign * edge, sign * self.bound)
        ends = sorted(sign * (self.value - b) for b in (band.low, band.high))
        return {
            "value": sign * (self.value - band.mean),
            "interval": ends,
            "minimum": sign * (needed - band.mean),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "value": self.value,
            "direction": self.direction,
            self.reference.kind: self.reference.to_dict(),
            "bound": self.bound,
            "effect": self.effect(),
            "passed": self.passed,
        }


@dataclass(frozen=True)
class Claim:
    """One of the paper's claims: its wording, what is tested, the tests and the verdict."""

    id: str
    paper: str  # the paper's own wording
    statement: str  # what is measured, in words
    rule: str  # the verdict's rule, in words
    tests: Sequence[Test] = ()
    measured: Mapping[str, Any] = field(default_factory=dict)
    note: str = ""
    # Tests reported beside the verdict, not deciding it (another reference, another variant).
    beside: Sequence[Test] = ()

    @property
    def verdict(self) -> Verdict:
        if not self.tests:
            return "not measured"
        return "supported" if all(t.passed for t in self.tests) else "not supported"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "paper": self.paper,
            "statement": self.statement,
            "rule": self.rule,
            "threshold": self.rule,
            "verdict": self.verdict,
        }
        if self.tests:
            primary = next(
                (t for t in self.tests if t.reference.kind != "tolerance"), self.tests[0]
            )
            out["statistic"] = primary.name
            out["value"] = primary.value
            out[primary.reference.kind] = primary.reference.to_dict()
        out["tests"] = [t.to_dict() for t in self.tests]
        out["beside"] = [t.to_dict() for t in self.beside]
        out["measured"] = dict(self.measured)
        out["note"] = self.note
        return out


def not_measured(claim: Claim, why: str) -> Claim:
    return Claim(claim.id, claim.paper, claim.statement, claim.rule, (), {}, why)


def step_lengths(result: ExperimentResult, positions: Sequence[int]) -> np.ndarray:
    """Distances between consecutive snapshots ``positions``."""
    distances = result.gram.distances()
    return np.array([distances[a, b] for a, b in itertools.pairwise(positions)])

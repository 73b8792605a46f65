"""Verifying stored results: replay training and compare every stored snapshot bit for bit.

A run's seeds are derived from the spec (:func:`weightspace.spec.plan_runs`) and training is
deterministic (:mod:`weightspace.determinism`), so training a run again from its start must give
the very bits that were stored, on the same torch version, device and CPU instruction set.
:func:`verify` does that for the chosen runs up to a chosen snapshot epoch and compares each
captured snapshot with the stored one as it arrives: parameters bitwise, metrics exactly. It
stops at the first difference and names it, with both environments, so a reader can tell a
changed file (the bits differ where nothing else does) from a changed machine (the environments
differ). A stored snapshot that cannot be read or fails its checksum is a difference too.

Replays start from the run's initial state, not from a stored resume state: the service keeps
only each run's latest state (at the final epoch of a finished run), which no stored snapshot
follows. Verifying up to epoch ``E`` therefore costs what training the runs to ``E`` cost.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from weightspace.data import Dataset
from weightspace.errors import InvalidField
from weightspace.snapshots import ChecksumError, ObjectNotFound, Snapshot, TrainState
from weightspace.spec import ExperimentSpec
from weightspace.training import Cancelled, Trainer

Verdict = Literal["identical", "differs"]
#: What differs: the parameter vector (and perhaps the metrics), the metrics alone, or the
#: stored file itself (missing, or its bytes do not match their checksum).
Reason = Literal["parameters", "metrics", "unreadable"]

#: The stored snapshot of ``(run, epoch)``; raises ChecksumError or ObjectNotFound when it cannot
#: be read intact.
StoredSnapshots = Callable[[int, int], Snapshot]


@dataclass(frozen=True)
class Scope:
    """Which runs to replay (all of them by default), up to which snapshot epoch (the final)."""

    runs: tuple[int, ...]
    until: int

    @classmethod
    def of(cls, spec: ExperimentSpec, run: int | None = None, epoch: int | None = None) -> Scope:
        """The scope of a request; :class:`InvalidField` (``run``, ``epoch``) if out of range."""
        if run is not None and not 0 <= run < spec.replicas:
            raise InvalidField(
                "run", f"run {run} does not exist (this experiment has runs 0..{spec.replicas - 1})"
            )
        schedule = spec.snapshot_epochs()
        if epoch is not None and epoch not in schedule:
            raise InvalidField(
                "epoch", f"epoch {epoch} is not a snapshot epoch (they are {_listed(schedule)})"
            )
        runs = tuple(range(spec.replicas)) if run is None else (run,)
        return cls(runs, spec.final_epoch if epoch is None else epoch)


@dataclass(frozen=True)
class Difference:
    """The first stored snapshot that the replay does not reproduce."""

    run: int
    epoch: int
    reason: Reason
    detail: str
    differing_values: int  # parameters whose bits differ (0 when only metrics differ)
    max_abs_difference: float | None  # over the differing finite values; None if none
    metrics: Mapping[str, tuple[float | None, float | None]]  # name: (stored, replayed)
    stored_environment: Mapping[str, str]
    replay_environment: Mapping[str, str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "run": self.run,
            "epoch": self.epoch,
            "reason": self.reason,
            "detail": self.detail,
            "differing_values": self.differing_values,
            "max_abs_difference": self.max_abs_difference,
            "metrics": {
                name: {"stored": stored, "replayed": replayed}
                for name, (stored, replayed) in self.metrics.items()
            },
            "stored_environment": dict(self.stored_environment),
            "replay_environment": dict(self.replay_environment),
        }


@dataclass(frozen=True)
class Verification:
    """The outcome: every snapshot compared identical so far, and the first difference if any."""

    scope: Scope
    compared: tuple[tuple[int, int], ...]  # (run, epoch) reproduced bitwise, in replay order
    environment: Mapping[str, str]  # the replay's
    difference: Difference | None

    @property
    def verdict(self) -> Verdict:
        return "identical" if self.difference is None else "differs"

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "runs": list(self.scope.runs),
            "until_epoch": self.scope.until,
            "compared": [{"run": run, "epoch": epoch} for run, epoch in self.compared],
            "environment": dict(self.environment),
            "difference": None if self.difference is None else self.difference.to_dict(),
        }


def verify(
    spec: ExperimentSpec,
    data: Dataset,
    stored: StoredSnapshots,
    scope: Scope,
    *,
    device: str | torch.device = "cpu",
) -> Verification:
    """Replay ``scope.runs`` of ``spec`` from their start to epoch ``scope.until`` and compare
    every snapshot scheduled on the way with ``stored``; stop at the first difference."""
    # Stopping at `until` shortens the spec only: seeds (plan_runs) do not depend on the final
    # epoch, and the schedule up to `until`, a snapshot epoch, is the full schedule's beginning.
    replay = spec.model_copy(update={"epochs": scope.until - spec.pretrain_epochs})
    trainer = Trainer(replay, data, device)
    compared: list[tuple[int, int]] = []
    found: list[Difference] = []

    def check(replayed: Snapshot, _state: TrainState) -> None:
        if found:
            return  # captures already queued when the difference was found
        difference = _compare(stored, replayed, trainer.environment)
        if difference is None:
            compared.append((replayed.run, replayed.epoch))
        else:
            found.append(difference)

    with contextlib.suppress(Cancelled):  # stopped at the first difference
        trainer.train(check, runs=scope.runs, should_stop=lambda: bool(found))
    return Verification(scope, tuple(compared), trainer.environment, found[0] if found else None)


def _compare(
    stored: StoredSnapshots, replayed: Snapshot, environment: Mapping[str, str]
) -> Difference | None:
    run, epoch = replayed.run, replayed.epoch
    try:
        original = stored(run, epoch)
    except (ChecksumError, ObjectNotFound) as error:
        detail = f"the stored snapshot cannot be read: {error}"
        return Difference(run, epoch, "unreadable", detail, 0, None, {}, {}, environment)
    metrics = _metric_differences(original.metrics, replayed.metrics)
    differing, largest, detail = _parameter_differences(original.params, replayed.params)
    if not differing and not metrics:
        return None
    if not differing:
        detail = f"the parameters are identical; metrics {_listed(sorted(metrics))} differ"
    reason: Reason = "parameters" if differing else "metrics"
    return Difference(
        run,
        epoch,
        reason,
        detail,
        differing,
        largest,
        metrics,
        original.environment,
        environment,
    )


def _parameter_differences(
    stored: np.ndarray, replayed: np.ndarray
) -> tuple[int, float | None, str]:
    """(values whose bits differ, the largest finite absolute difference among them, why)."""
    a = np.asarray(stored, dtype=np.float32)
    b = np.asarray(replayed, dtype=np.float32)
    if a.shape != b.shape:
        detail = f"the stored vector has {a.size:,} parameters, the replay {b.size:,}"
        return max(a.size, b.size), None, detail
    differ = a.view(np.uint32) != b.view(np.uint32)
    count = int(differ.sum())
    if count == 0:
        return 0, None, ""
    gaps = np.abs(a[differ].astype(np.float64) - b[differ].astype(np.float64))
    finite = gaps[np.isfinite(gaps)]
    largest = float(finite.max()) if finite.size else None
    return count, largest, f"{count:,} of {a.size:,} parameters differ"


def _metric_differences(
    stored: Mapping[str, float], replayed: Mapping[str, float]
) -> dict[str, tuple[float | None, float | None]]:
    """Metrics whose values are not exactly equal (NaN equals NaN), as (stored, replayed)."""
    differing = {}
    for name in sorted(set(stored) | set(replayed)):
        a, b = stored.get(name), replayed.get(name)
        same = a is not None and b is not None and (a == b or (math.isnan(a) and math.isnan(b)))
        if not same:
            differing[name] = (_finite(a), _finite(b))
    return differing


def _finite(value: float | None) -> float | None:
    """JSON has no NaN or infinity: those read as null."""
    return None if value is None or not math.isfinite(value) else float(value)


def _listed(values: Iterable[object]) -> str:
    return ", ".join(str(v) for v in values)

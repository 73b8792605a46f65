"""One reproduction of the paper, assembled the same way offline and by the report job.

A reproduction is K replicates of the preset's experiments, replicate k trained with global
seeds derived from the preset's (:func:`weightspace.presets.load_preset`, ``replicate=k``). Per
replicate, :func:`evaluate_replicate` evaluates the straight line of experiment 1 (claim 2a), the
barriers of experiments 2-4 (claim 4), the untrained-initialisation controls (claim 5) and the
claims; :func:`assemble` summarises the claims over the replicates and records the environment.
Where the snapshots come from (a local store, the service's object store) is the caller's
business: it hands over :class:`~weightspace.claims.ExperimentResult` objects that can read their
parameter vectors, and how to load a data set.
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from weightspace import landscape
from weightspace.claims import (
    BarrierReport,
    Claim,
    ExperimentResult,
    LineLoss,
    evaluate_claims,
    late_window,
    summarise,
)
from weightspace.data import Dataset
from weightspace.determinism import tf32_enabled
from weightspace.spec import ExperimentSpec
from weightspace.vocabulary import ROLES

BARRIER_ROLES = ("independent-inits", "shared-init", "shared-init-masks", "pretrained-clones")
DataFor = Callable[[ExperimentSpec], Dataset]
BarriersFor = Callable[[ExperimentResult], BarrierReport]


@dataclass(frozen=True)
class Replicate:
    """One replicate (seed index ``seed``) of the experiments and what was evaluated on it."""

    seed: int
    results: Mapping[str, ExperimentResult | None]
    line: LineLoss | None
    barriers: Mapping[str, BarrierReport | None]
    claims: Sequence[Claim]
    late_chord: LineLoss | None = None


@dataclass(frozen=True)
class Reproduction:
    replicates: Sequence[Replicate]
    summary: Sequence[dict[str, Any]]  # the claims over the replicates (claims.summarise)
    meta: Mapping[str, str] = field(default_factory=dict)

    @property
    def first(self) -> Replicate:
        return self.replicates[0]

    def claims_document(self) -> dict[str, Any]:
        """``claims.json``: the summary, and each replicate's own claims."""
        return {
            "claims": list(self.summary),
            "seeds": [
                {"seed": r.seed, "claims": [c.to_dict() for c in r.claims]} for r in self.replicates
            ],
            "meta": dict(self.meta),
        }


def line_of(trajectory: ExperimentResult, data: Dataset, device: str) -> LineLoss:
    """Train and test loss from experiment 1's first snapshot (of its first run) to its last."""
    run = trajectory.run_indices()[min(trajectory.run_indices())]
    return _line(trajectory, run[0], run[-1], data, device)


def late_chord_of(trajectory: ExperimentResult, data: Dataset, device: str) -> LineLoss:
    """Train and test loss along experiment 1's late chord (claim 1): the straight line from the
    first snapshot of its late window to its last."""
    run = trajectory.run_indices()[min(trajectory.run_indices())]
    late = late_window([trajectory.epochs[i] for i in run])
    return _line(trajectory, run[late[0]], run[late[-1]], data, device)


def _line(
    trajectory: ExperimentResult, start: int, end: int, data: Dataset, device: str
) -> LineLoss:
    if trajectory.vector is None:
        raise ValueError("the line needs the trajectory's parameter vectors")
    a, b = trajectory.vector(start), trajectory.vector(end)
    return landscape.loss_along_line(trajectory.spec, data, a, b, device=device)


class _Controls:
    """Claim 5's untrained-initialisation controls, computed once per model and run count."""

    def __init__(self) -> None:
        self._cache: dict[str, dict[str, np.ndarray]] = {}

    def of(self, result: ExperimentResult, data: Dataset) -> dict[str, np.ndarray]:
        replicas = len(result.run_indices())
        key = json.dumps([result.spec.model.model_dump(mode="json"), replicas, data.input_shape])
        if key not in self._cache:
            self._cache[key] = landscape.init_spread(result.spec.model, data.input_shape, replicas)
        return self._cache[key]


def evaluate_replicate(
    seed: int,
    results: Mapping[str, ExperimentResult | None],
    data_for: DataFor,
    *,
    device: str = "cpu",
    barriers_for: BarriersFor | None = None,
    controls: _Controls | None = None,
) -> Replicate:
    """Lines, barriers, controls and claims of one replicate's finished experiments."""
    controls = controls or _Controls()
    trajectory = results.get("trajectory")
    line = late_chord = None
    if trajectory is not None and trajectory.vector is not None:
        line = line_of(trajectory, data_for(trajectory.spec), device)
        if len(trajectory.run_indices()[min(trajectory.run_indices())]) >= 4:
            late_chord = late_chord_of(trajectory, data_for(trajectory.spec), device)
    barriers: dict[str, BarrierReport | None] = {}
    spread_controls: dict[str, dict[str, np.ndarray]] = {}
    for role in BARRIER_ROLES:
        result = results.get(role)
        if result is None:
            barriers[role] = None
            continue
        data = data_for(result.spec)
        if barriers_for is not None:
            barriers[role] = barriers_for(result)
        elif result.vector is not None:
            barriers[role] = landscape.barriers(result, data, device=device)
        spread_controls[role] = controls.of(result, data)
    claims = evaluate_claims(results, line, barriers, spread_controls, late_chord)
    return Replicate(seed, dict(results), line, barriers, claims, late_chord)


def environment(device: str) -> dict[str, str]:
    """Where the analysis ran: software versions, device, CPU instruction set and threads."""
    hardware = (
        torch.cuda.get_device_name(0)
        if device.startswith("cuda")
        else (platform.processor() or platform.machine())
    )
    return {
        "hardware": f"{hardware} ({device}; CPU ISA {torch.backends.cpu.get_cpu_capability()}, "
        f"{torch.get_num_threads()} torch threads)",
        # What the stability check of docs/results varies: the CPU kernels and TF32.
        "numerics": f"CPU ISA {torch.backends.cpu.get_cpu_capability()} "
        f"(ATEN_CPU_CAPABILITY={os.environ.get('ATEN_CPU_CAPABILITY', 'default')}), "
        f"TF32 {'on' if tf32_enabled() else 'off'} (WEIGHTSPACE_TF32)",
        "software": f"Python {platform.python_version()}, torch {torch.__version__}, "
        f"numpy {np.__version__}",
    }


def assemble(
    replicates: Sequence[Replicate], meta: Mapping[str, str], *, device: str = "cpu"
) -> Reproduction:
    """The reproduction: the claims summarised over the replicates, with the environment."""
    if not replicates:
        raise ValueError("a reproduction needs at least one replicate")
    full = {
        **dict(meta),
        "seeds": f"{len(replicates)} (replicates {', '.join(str(r.seed) for r in replicates)})",
        **environment(device),
    }
    summary = summarise([r.claims for r in replicates])
    return Reproduction(list(replicates), summary, full)


def missing_roles(results: Mapping[str, ExperimentResult | None]) -> list[str]:
    return [role for role in ROLES if results.get(role) is None]

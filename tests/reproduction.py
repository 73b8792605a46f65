"""A tiny but real reproduction of the paper's four experiments, for the report tests.

The ``quick`` preset on scikit-learn's ``digits`` with epochs and replicas shrunk, so all four
experiments and the line evaluation train on a CPU in a few seconds.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch

from weightspace import landscape
from weightspace import reproduction as assembly
from weightspace.analysis import ArrayVector, gram
from weightspace.claims import ExperimentResult, LineLoss
from weightspace.data import load_dataset
from weightspace.presets import load_preset
from weightspace.snapshots import Snapshot, TrainState
from weightspace.training import Trainer

# Per role: the spec fields overriding the preset's. Three replicas is the fewest claim 5 measures.
SHRINK: dict[str, dict[str, int]] = {
    "trajectory": {"epochs": 6, "snapshot_every": 1, "replicas": 1},
    "independent-inits": {"epochs": 4, "snapshot_every": 1, "replicas": 3},
    "shared-init": {"epochs": 4, "snapshot_every": 1, "replicas": 3},
    "shared-init-masks": {"epochs": 4, "snapshot_every": 1, "replicas": 3},
    "pretrained-clones": {"pretrain_epochs": 1, "epochs": 3, "snapshot_every": 1, "replicas": 3},
}


@dataclass(frozen=True)
class Reproduction:
    results: dict[str, ExperimentResult]
    line: LineLoss
    meta: dict[str, str]
    # Per role, the snapshots' parameter vectors, in the results' order (run, then epoch).
    params: dict[str, list[np.ndarray]]
    core: assembly.Reproduction  # the core's assembly of it (one seed): claims, barriers, meta


def _train(spec, data) -> list[Snapshot]:  # type: ignore[no-untyped-def]
    snapshots: list[Snapshot] = []

    def keep(snapshot: Snapshot, state: TrainState) -> None:
        snapshots.append(snapshot)

    Trainer(spec, data).train(keep)
    return sorted(snapshots, key=lambda s: (s.run, s.epoch))


def build_reproduction(dataset: str = "digits") -> Reproduction:
    """Train the shrunk ``quick`` preset's experiments and evaluate the line of experiment 1."""
    # Models this small train no faster on more threads, and on a busy machine torch's extra
    # threads spin against other processes (measured: 14 s on one thread, 2 minutes on two).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _build(dataset)
    finally:
        torch.set_num_threads(threads)


def _build(dataset: str) -> Reproduction:
    started = time.perf_counter()
    preset = load_preset("quick", dataset)
    data = load_dataset(preset.experiments[0].spec.dataset)
    results: dict[str, ExperimentResult] = {}
    params: dict[str, list[np.ndarray]] = {}
    for experiment in preset.experiments:
        spec = experiment.spec.model_copy(update=SHRINK[experiment.role])
        snapshots = _train(spec, data)
        vectors = [s.params for s in snapshots]
        params[experiment.role] = vectors
        results[experiment.role] = ExperimentResult(
            role=experiment.role,
            title=experiment.title,
            spec=spec,
            runs=[s.run for s in snapshots],
            epochs=[s.epoch for s in snapshots],
            metrics=[dict(s.metrics) for s in snapshots],
            gram=gram([ArrayVector(s.params) for s in snapshots]),
            gradients=[landscape.gradient_norms(spec, data, v).to_dict() for v in vectors],
            vector=vectors.__getitem__,
        )
    replicate = assembly.evaluate_replicate(0, dict(results), lambda _spec: data)
    meta = {
        "preset": f"{preset.name} (epochs and replicas shrunk for the tests)",
        "dataset": f"{dataset} ({len(data.y_train)} train / {len(data.y_test)} test images)",
        "hardware": f"{platform.machine()} CPU, {os.cpu_count()} cores",
        "software": (
            f"Python {sys.version.split()[0]}, torch {torch.__version__}, numpy {np.__version__}"
        ),
        "wall time": f"{time.perf_counter() - started:.1f} s",
    }
    core = assembly.assemble([replicate], meta)
    assert replicate.line is not None
    return Reproduction(results, replicate.line, dict(core.meta), params, core)

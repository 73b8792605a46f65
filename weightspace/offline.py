"""Reproduce a preset in this process, without the service: train, snapshot, analyse, report.

For machines that have PyTorch but not the service's stack (a lent GPU machine with no
database, broker or network): the same core as the worker — Trainer, snapshots in a local
store with their full-batch gradient norms, streaming Gram analysis, and the reproduction's
assembly (lines, barriers, controls, claims over K seeds, figures) — writing the same report.

    python -m weightspace.offline --preset paper --dataset mnist --device cuda --seeds 3 \\
        --out docs/results/paper-mnist
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from weightspace import landscape
from weightspace.analysis import Gram, gram
from weightspace.claims import ExperimentResult
from weightspace.data import Dataset, load_dataset
from weightspace.presets import load_preset, preset_names, with_epochs
from weightspace.report import render_report, write_report
from weightspace.reproduction import Replicate, assemble, evaluate_replicate
from weightspace.snapshots import (
    LocalStore,
    Snapshot,
    StoredVector,
    TrainState,
    get_snapshot,
    put_snapshot,
)
from weightspace.spec import DatasetSpec, ExperimentSpec
from weightspace.training import Trainer
from weightspace.vocabulary import DATASET_NAMES, ROLES

# run, epoch, metrics, gradient record, snapshot key
Kept = list[tuple[int, int, dict[str, float], dict[str, Any], str]]


def _train(
    spec: ExperimentSpec, data: Dataset, store: LocalStore, experiment_id: str, device: str
) -> Kept:
    kept: Kept = []

    def keep(snapshot: Snapshot, _state: TrainState) -> None:
        key = put_snapshot(store, experiment_id, snapshot).key
        gradient = landscape.gradient_norms(spec, data, snapshot.params, device=device)
        kept.append((snapshot.run, snapshot.epoch, dict(snapshot.metrics), gradient.to_dict(), key))

    Trainer(spec, data, device).train(keep)
    return sorted(kept, key=lambda item: (item[0], item[1]))


def _analysable(matrix: Gram, kept: Kept, role: str) -> Gram:
    """``matrix``, unless a snapshot's values are not finite or too large to analyse (a training
    that diverged): then a ValueError naming the experiment, run and epoch, as the service's
    409 "Damaged snapshot" does, rather than a report of NaNs."""
    if (index := matrix.first_unanalysable()) is None:
        return matrix
    run, epoch, *_ = kept[index]
    raise ValueError(
        f"{role}: the snapshot of run {run} at epoch {epoch} holds values that are not finite "
        "or too large to analyse (did training diverge? try a lower learning rate)"
    )


def _vector(store: LocalStore, keys: Sequence[str]) -> Callable[[int], Any]:
    return lambda position: get_snapshot(store, keys[position]).params


def reproduce(
    preset: str,
    dataset: str | None,
    out: Path,
    *,
    roles: Sequence[str] = ROLES,
    device: str = "cpu",
    data_dir: Path | None = None,
    snapshots: Path | None = None,
    seeds: int = 1,
    epochs: int | None = None,
) -> dict[str, str]:
    """Train the preset's experiments named in ``roles`` ``seeds`` times (replicates with derived
    seeds), write the report to ``out``; return its meta. ``epochs`` shortens (or lengthens) the
    preset, its proportions kept (:func:`weightspace.presets.with_epochs`)."""

    @cache
    def data_for(spec: DatasetSpec) -> Dataset:
        return load_dataset(spec, data_dir)

    store = LocalStore(snapshots or out / "snapshots")
    replicates: list[Replicate] = []
    seconds: dict[str, float] = {}
    loaded = load_preset(preset, dataset)
    for replicate in range(seeds):
        loaded = load_preset(preset, dataset, replicate)
        if epochs is not None:
            loaded = with_epochs(loaded, epochs)
        results: dict[str, ExperimentResult | None] = dict.fromkeys(ROLES)
        for index, experiment in enumerate(loaded.experiments):
            if experiment.role not in roles:
                continue
            spec = experiment.spec
            started = time.perf_counter()
            kept = _train(
                spec, data_for(spec.dataset), store, f"{replicate:016x}{index:016x}", device
            )
            seconds[experiment.role] = (
                seconds.get(experiment.role, 0.0) + time.perf_counter() - started
            )
            keys = [key for *_, key in kept]
            with np.errstate(over="ignore", invalid="ignore"):  # checked by _analysable
                matrix = gram([StoredVector(store, key) for key in keys])
            matrix = _analysable(matrix, kept, experiment.role)
            results[experiment.role] = ExperimentResult(
                role=experiment.role,
                title=experiment.title,
                spec=spec,
                runs=[run for run, *_ in kept],
                epochs=[epoch for _, epoch, *_ in kept],
                metrics=[metrics for _, _, metrics, _, _ in kept],
                gram=matrix,
                gradients=[gradient for _, _, _, gradient, _ in kept],
                vector=_vector(store, keys),
            )
        started = time.perf_counter()
        replicates.append(
            evaluate_replicate(replicate, results, lambda s: data_for(s.dataset), device=device)
        )
        seconds["analysis"] = seconds.get("analysis", 0.0) + time.perf_counter() - started
        meta = {
            "preset": loaded.name,
            "dataset": loaded.dataset,
            "experiments run": ", ".join(r for r in ROLES if r in roles),
            "wall time": "; ".join(f"{role} {s:.0f} s" for role, s in seconds.items()),
        }
        # Written after every replicate: a long run interrupted keeps the seeds it finished.
        reproduction = assemble(replicates, meta, device=device)
        write_report(render_report(reproduction), out)
    return dict(reproduction.meta)


def main(argv: list[str] | None = None) -> None:
    import torch

    parser = argparse.ArgumentParser(
        prog="python -m weightspace.offline", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--preset", choices=preset_names(), default="quick")
    parser.add_argument("--dataset", choices=DATASET_NAMES)
    parser.add_argument(
        "--roles", default=",".join(ROLES), help="comma-separated experiments to run"
    )
    parser.add_argument("--seeds", type=int, default=1, help="replicates with derived seeds (K)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument(
        "--epochs",
        type=int,
        help="epochs in all instead of the preset's (pretraining and snapshot interval scaled "
        "alike): for dry runs and time-boxed machines",
    )
    parser.add_argument("--out", type=Path, required=True, help="the report folder")
    parser.add_argument(
        "--snapshots", type=Path, help="snapshot directory (default: OUT/snapshots)"
    )
    args = parser.parse_args(argv)
    roles = args.roles.split(",")
    if unknown := set(roles) - set(ROLES):
        parser.error(f"unknown roles {sorted(unknown)}; choose from {', '.join(ROLES)}")
    if args.seeds < 1:
        parser.error("--seeds must be 1 or more")
    meta = reproduce(
        args.preset,
        args.dataset,
        args.out,
        roles=roles,
        device=args.device,
        data_dir=args.data_dir,
        snapshots=args.snapshots,
        seeds=args.seeds,
        epochs=args.epochs,
    )
    print("\n".join(f"{k}: {v}" for k, v in meta.items()))
    print(f"report: {args.out / 'index.html'}")


if __name__ == "__main__":
    main()

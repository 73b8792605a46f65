"""Reproduce a preset in this process, without the service: train, snapshot, analyse, report.

For machines that have PyTorch but not the service's stack (a lent GPU machine with no
database, broker or network): the same core as the worker — Trainer, snapshots in a local
store, streaming Gram analysis, claims and figures — writing the same report folder.

    python -m weightspace.offline --preset paper --dataset fashion-mnist --device cuda \\
        --roles trajectory --out docs/results/paper-fashion-mnist
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from weightspace.analysis import gram
from weightspace.claims import ExperimentResult, LineLoss
from weightspace.data import Dataset, load_dataset
from weightspace.presets import load_preset, preset_names
from weightspace.report import render_report, write_report
from weightspace.snapshots import (
    LocalStore,
    Snapshot,
    StoredVector,
    TrainState,
    get_snapshot,
    put_snapshot,
)
from weightspace.spec import ExperimentSpec
from weightspace.training import Trainer, loss_along_line
from weightspace.vocabulary import DATASET_NAMES, ROLES

Kept = list[tuple[int, int, Mapping[str, float], str]]  # run, epoch, metrics, snapshot key


def _train(
    spec: ExperimentSpec, data: Dataset, store: LocalStore, experiment_id: str, device: str
) -> Kept:
    kept: Kept = []

    def keep(snapshot: Snapshot, _state: TrainState) -> None:
        key = put_snapshot(store, experiment_id, snapshot).key
        kept.append((snapshot.run, snapshot.epoch, snapshot.metrics, key))

    Trainer(spec, data, device).train(keep)
    return sorted(kept, key=lambda item: (item[0], item[1]))


def reproduce(
    preset: str,
    dataset: str | None,
    out: Path,
    *,
    roles: Sequence[str] = ROLES,
    device: str = "cpu",
    data_dir: Path | None = None,
    snapshots: Path | None = None,
) -> dict[str, str]:
    """Train the preset's experiments named in ``roles``, write the report to ``out``; return its meta."""
    loaded = load_preset(preset, dataset)
    store = LocalStore(snapshots or out / "snapshots")
    results: dict[str, ExperimentResult | None] = dict.fromkeys(ROLES)
    line = None
    seconds: dict[str, float] = {}
    for index, experiment in enumerate(loaded.experiments):
        if experiment.role not in roles:
            continue
        spec = experiment.spec
        data = load_dataset(spec.dataset, data_dir)
        started = time.perf_counter()
        kept = _train(spec, data, store, f"{index:032x}", device)
        seconds[experiment.role] = time.perf_counter() - started
        results[experiment.role] = ExperimentResult(
            role=experiment.role,
            title=experiment.title,
            spec=spec,
            runs=[run for run, _, _, _ in kept],
            epochs=[epoch for _, epoch, _, _ in kept],
            metrics=[metrics for _, _, metrics, _ in kept],
            gram=gram([StoredVector(store, key) for _, _, _, key in kept]),
        )
        if experiment.role == "trajectory":  # from run 0's first snapshot to its last
            run0 = [key for run, _, _, key in kept if run == 0]
            start, end = (get_snapshot(store, key).params for key in (run0[0], run0[-1]))
            line = LineLoss(*loss_along_line(spec, data, start, end, device=device))
    hardware = torch.cuda.get_device_name(0) if device.startswith("cuda") else platform.processor()
    meta = {
        "preset": loaded.name,
        "dataset": loaded.dataset,
        "experiments run": ", ".join(r for r in ROLES if r in roles),
        "hardware": f"{hardware} ({device})",
        "software": f"Python {platform.python_version()}, torch {torch.__version__}, numpy {np.__version__}",
        "training wall time": "; ".join(f"{role} {s:.0f} s" for role, s in seconds.items()),
    }
    write_report(render_report(results, line, meta=meta), out)
    return meta


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m weightspace.offline", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--preset", choices=preset_names(), default="quick")
    parser.add_argument("--dataset", choices=DATASET_NAMES)
    parser.add_argument(
        "--roles", default=",".join(ROLES), help="comma-separated experiments to run"
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--out", type=Path, required=True, help="the report folder")
    parser.add_argument(
        "--snapshots", type=Path, help="snapshot directory (default: OUT/snapshots)"
    )
    args = parser.parse_args(argv)
    roles = args.roles.split(",")
    if unknown := set(roles) - set(ROLES):
        parser.error(f"unknown roles {sorted(unknown)}; choose from {', '.join(ROLES)}")
    meta = reproduce(
        args.preset,
        args.dataset,
        args.out,
        roles=roles,
        device=args.device,
        data_dir=args.data_dir,
        snapshots=args.snapshots,
    )
    print("\n".join(f"{k}: {v}" for k, v in meta.items()))
    print(f"report: {args.out / 'index.html'}")


if __name__ == "__main__":
    main()

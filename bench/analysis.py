"""Benchmark: streaming Gram analysis against loading every snapshot into sklearn and scipy.

Writes a seeded float32 random walk of ``--snapshots`` snapshots of ``--params`` parameters to a
LocalStore in a temp dir, then runs each side in its own child process (so each peak RSS is its
own) and prints one JSON line with times, peak memories, their ratios and the differences between
the two sides' results:

core       ``gram`` over ``StoredVector``s, ``pca`` (all components), ``distances``, ``norms``
reference  ``get_snapshot`` into one (n, P) float32 matrix, ``sklearn.decomposition.PCA()``
           ``.fit_transform`` (default solver), ``scipy.spatial.distance.pdist`` + ``squareform``,
           ``numpy.linalg.norm``

Times cover the work only (after imports); peaks are the child's ``ru_maxrss``, baselines its
``ru_maxrss`` after imports. The snapshots are written by a child as well: Linux carries a
process's RSS high-water mark across ``exec`` into ``ru_maxrss``, so the spawner stays small.

``max_rel_diff`` is ``max|core - reference| / max|reference|`` per quantity; for coordinates it is
taken per component (after matching signs) and the worst component is reported. The reference's
last component (variance ~0, undefined direction) has no counterpart among the core's n - 1.
scikit-learn computes in float32 for float32 input, so its trailing components (whose variances
are close together) differ from the float64 answer; ``coordinates_top10`` reports the leading ten.

Usage: ``python bench/analysis.py [--snapshots 200] [--params 819557] [--seed 0] [--keep]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

from weightspace.snapshots import LocalStore, Snapshot, put_snapshot, snapshot_key

EXPERIMENT = uuid.UUID(int=0x5EED)
QUANTITIES = ("coordinates", "explained_variance_ratio", "distances", "norms")


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def write_walk(store: LocalStore, n: int, p: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 0.05, p)  # an initialisation-like start, away from the origin
    for epoch in range(n):
        put_snapshot(store, EXPERIMENT, Snapshot(run=0, epoch=epoch, params=x.astype(np.float32)))
        x += rng.normal(0.0, 1e-3, p)


def run_core(store: LocalStore, keys: list[str], chunk: int | None) -> dict[str, np.ndarray]:
    from weightspace.analysis import gram, pca
    from weightspace.snapshots import StoredVector

    g = gram([StoredVector(store, k) for k in keys], chunk_elements=chunk)
    result = pca(g)
    return {
        "coordinates": result.coordinates,
        "explained_variance_ratio": result.explained_variance_ratio,
        "distances": g.distances(),
        "norms": g.norms(),
    }


def run_reference(store: LocalStore, keys: list[str]) -> dict[str, np.ndarray]:
    from scipy.spatial.distance import pdist, squareform
    from sklearn.decomposition import PCA

    from weightspace.snapshots import get_snapshot

    first = get_snapshot(store, keys[0]).params
    x = np.empty((len(keys), first.size), dtype=np.float32)
    x[0] = first
    for i, key in enumerate(keys[1:], start=1):
        x[i] = get_snapshot(store, key).params
    model = PCA()
    coordinates = model.fit_transform(x)
    return {
        "coordinates": coordinates,
        "explained_variance_ratio": model.explained_variance_ratio_,
        "distances": squareform(pdist(x)),
        "norms": np.linalg.norm(x, axis=1),
    }


def child(side: str, root: Path, n: int, chunk: int | None) -> None:
    # Import everything a side needs before the baseline and the clock.
    if side == "reference":
        import scipy.spatial.distance  # noqa: F401
        import sklearn.decomposition  # noqa: F401
    else:
        import weightspace.analysis  # noqa: F401
    store = LocalStore(root / "store")
    keys = [snapshot_key(EXPERIMENT, 0, e) for e in range(n)]
    baseline = peak_mib()
    start = time.perf_counter()
    results = run_core(store, keys, chunk) if side == "core" else run_reference(store, keys)
    seconds = time.perf_counter() - start
    peak = peak_mib()
    np.savez(root / f"{side}.npz", **results)
    print(json.dumps({"seconds": seconds, "peak_mib": peak, "baseline_mib": baseline}))


def spawn(*args: str) -> str:
    command = [sys.executable, os.path.abspath(__file__), *args]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def compare(root: Path) -> tuple[dict[str, float], dict[str, float]]:
    core, ref = np.load(root / "core.npz"), np.load(root / "reference.npz")
    max_abs, max_rel = {}, {}
    for name in QUANTITIES:
        ours, theirs = core[name], ref[name].astype(np.float64)
        if name == "coordinates":
            theirs = theirs[:, : ours.shape[1]]
            theirs = theirs * np.where(np.sum(theirs * ours, axis=0) < 0, -1.0, 1.0)
            diff = np.abs(ours - theirs).max(axis=0)
            rel = diff / np.abs(theirs).max(axis=0)
            # The leading components, which float32 resolves (the tail's variances are too close).
            max_abs["coordinates_top10"] = float(diff[:10].max())
            max_rel["coordinates_top10"] = float(rel[:10].max())
        else:
            theirs = theirs[: ours.shape[0]]
            diff = np.abs(ours - theirs)
            rel = diff.max() / np.abs(theirs).max()
        max_abs[name], max_rel[name] = float(diff.max()), float(np.max(rel))
    return max_abs, max_rel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshots", type=int, default=200)
    parser.add_argument("--params", type=int, default=819_557)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--chunk-elements", type=int, help="core chunk (default: gram's)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir, print its path")
    parser.add_argument("--side", choices=["write", "core", "reference"], help=argparse.SUPPRESS)
    parser.add_argument("--store", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side == "write":
        write_walk(LocalStore(args.store / "store"), args.snapshots, args.params, args.seed)
        os.sync()  # no writeback competing with the timed reads
        return
    if args.side:
        child(args.side, args.store, args.snapshots, args.chunk_elements)
        return

    root = Path(tempfile.mkdtemp(prefix="weightspace-bench-"))
    common = ["--store", str(root), "--snapshots", str(args.snapshots)]
    try:
        spawn("--side", "write", *common, "--params", str(args.params), "--seed", str(args.seed))
        chunk = [] if args.chunk_elements is None else [f"--chunk-elements={args.chunk_elements}"]
        sides = {
            side: json.loads(spawn("--side", side, *common, *extra).strip().splitlines()[-1])
            for side, extra in (("core", chunk), ("reference", []))
        }
        core, reference = sides["core"], sides["reference"]
        max_abs, max_rel = compare(root)
        print(
            json.dumps(
                {
                    "snapshots": args.snapshots,
                    "params": args.params,
                    "core_seconds": round(core["seconds"], 3),
                    "reference_seconds": round(reference["seconds"], 3),
                    "speedup": round(reference["seconds"] / core["seconds"], 2),
                    "core_peak_mib": round(core["peak_mib"], 1),
                    "reference_peak_mib": round(reference["peak_mib"], 1),
                    "memory_ratio": round(core["peak_mib"] / reference["peak_mib"], 3),
                    "core_baseline_mib": round(core["baseline_mib"], 1),
                    "reference_baseline_mib": round(reference["baseline_mib"], 1),
                    "max_abs_diff": max_abs,
                    "max_rel_diff": max_rel,
                }
            )
        )
    finally:
        if args.keep:
            print(f"kept {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

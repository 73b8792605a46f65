"""Load test of the API on loopback with `hey`: prints one JSON line.

Starts the API (embedded mode: SQLite, local store, no worker) in a temporary home, trains one
small experiment in-process (5 runs x 20 snapshots of a digits MLP) and clones its snapshot rows
into fresh experiments for the cold cells (a clone has no cached Gram). Then, for c = 1, 16, 64:

- ``pca_warm``: ``GET /pca`` on the trained experiment (Gram cached);
- ``pca_cold``: ``c`` concurrent ``GET /pca`` on a fresh clone, waves of fresh clones;
- ``distances``, ``list`` (``GET /experiments?limit=50``), ``post`` (``POST /experiments``);

each cell bounded by ``--requests`` and ``--seconds``. Also ``health_during_cold``: ``/health``
latency while 16 cold analyses run, and the API's RSS before and after. Targets: no errors in
any cell; warm ``/pca`` at c=64 at least half the rps of ``/distances``; p99 of ``/health``
at most 100 ms during the cold analyses.

    python bench/load.py [--requests 400] [--seconds 20]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SPEC = {
    "name": "load",
    "seed": 1,
    "dataset": {"name": "digits", "train_size": 300, "test_size": 100},
    "model": {"kind": "mlp", "hidden": [16]},
    "epochs": 19,
    "batch_size": 50,
    "snapshot_every": 1,
    "replicas": 5,
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def hey(
    url: str, c: int, n: int, seconds: float, method: str = "GET", body: str = ""
) -> dict[str, Any]:
    """Run hey; rps, p50/p99 (ms) and errors (non-2xx or failed) from its CSV rows."""
    n = max(c, n // c * c)  # hey sends a whole number of requests per worker
    args = ["hey", "-n", str(n), "-c", str(c), "-t", "60", "-o", "csv", "-m", method]
    if body:
        args += ["-T", "application/json", "-d", body]
    started = time.monotonic()
    try:
        out = subprocess.run(
            [*args, url], capture_output=True, text=True, timeout=seconds + 90, check=False
        ).stdout
    except subprocess.TimeoutExpired as timeout:
        out = timeout.stdout.decode() if isinstance(timeout.stdout, bytes) else timeout.stdout or ""
    wall = time.monotonic() - started
    rows = list(csv.DictReader(io.StringIO(out)))
    latencies = sorted(float(r["response-time"]) * 1000 for r in rows)
    errors = sum(1 for r in rows if not r["status-code"].startswith("2")) + max(0, n - len(rows))
    if not latencies:
        return {"c": c, "requests": 0, "errors": n}
    return {
        "c": c,
        "requests": len(rows),
        "rps": round(len(rows) / wall, 1),
        "p50_ms": round(latencies[len(latencies) // 2], 1),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 1),
        "errors": errors,
    }


def clone(sessions: Any, source: uuid.UUID) -> uuid.UUID:
    """A new experiment with the source's runs and snapshot rows (same objects): no cached Gram."""
    from weightspace_app.infra.db import Experiment, Run, SnapshotRecord

    new_id = uuid.uuid4()
    with sessions() as session:
        original = session.get_one(Experiment, source)
        experiment = Experiment(
            id=new_id,
            owner=original.owner,
            name="clone",
            spec=original.spec,
            queue=original.queue,
            status="succeeded",
        )
        session.add(experiment)
        session.flush()
        for run in original.runs:
            session.add(
                Run(
                    experiment_id=new_id,
                    run=run.run,
                    init_seed=run.init_seed,
                    data_seed=run.data_seed,
                    final_epoch=run.final_epoch,
                    status=run.status,
                )
            )
        for record in session.query(SnapshotRecord).filter_by(experiment_id=source):
            session.add(
                SnapshotRecord(
                    experiment_id=new_id,
                    run=record.run,
                    epoch=record.epoch,
                    key=record.key,
                    size=record.size,
                    sha256=record.sha256,
                    parameters=record.parameters,
                    metrics=record.metrics,
                )
            )
        session.commit()
    return new_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="Requests per cell (at most).")
    parser.add_argument("--seconds", type=float, default=20, help="Time per cell (at most).")
    parser.add_argument("--concurrency", default="1,16,64")
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]

    home = Path(tempfile.mkdtemp(prefix="weightspace-load-"))
    env = {**os.environ, "WEIGHTSPACE_HOME": str(home), "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *(str(ROOT / p) for p in ("app", "service", "worker", "migrations", "client"))]
    )}  # fmt: skip
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    api = subprocess.Popen(
        [sys.executable, "-m", "weightspace_service", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{base}/health", timeout=2)
                break
            except OSError:
                assert time.monotonic() < deadline and api.poll() is None, "the API did not start"
                time.sleep(0.2)
        os.environ["WEIGHTSPACE_HOME"] = str(home)
        from weightspace_app.access import ANONYMOUS
        from weightspace_app.infra.db import make_engine, make_sessionmaker
        from weightspace_app.infra.settings import Settings
        from weightspace_app.infra.storage import store_for
        from weightspace_app.usecases.execution import execute
        from weightspace_app.usecases.submission import Submitter, submit_experiment

        from weightspace.spec import ExperimentSpec

        settings = Settings(home=home)
        sessions = make_sessionmaker(make_engine(settings.database_url))
        with sessions() as session:
            who = Submitter(ANONYMOUS, "cpu", settings)
            trained = submit_experiment(session, who, ExperimentSpec.model_validate(SPEC)).item.id
        execute(sessions, store_for(settings), trained, device="cpu")
        warm = f"{base}/experiments/{trained}"
        urllib.request.urlopen(f"{warm}/pca", timeout=120).read()  # warm the cache
        rss_before = rss_mib(api.pid)

        cells: dict[str, list[dict[str, Any]]] = {}
        for c in levels:
            cells.setdefault("pca_warm", []).append(
                hey(f"{warm}/pca", c, args.requests, args.seconds)
            )
            cells.setdefault("distances", []).append(
                hey(f"{warm}/distances", c, args.requests, args.seconds)
            )
            waves = [hey(f"{base}/experiments/{clone(sessions, trained)}/pca", c, c, args.seconds)
                     for _ in range(3)]  # fmt: skip
            total = sum(w["requests"] for w in waves)
            cells.setdefault("pca_cold", []).append({
                "c": c, "requests": total, "waves": 3,
                "rps": round(sum(w.get("rps", 0) for w in waves) / 3, 2),
                "p50_ms": sorted(w.get("p50_ms", 0) for w in waves)[1],
                "p99_ms": max(w.get("p99_ms", 0) for w in waves),
                "errors": sum(w["errors"] for w in waves),
            })  # fmt: skip
            cells.setdefault("list", []).append(
                hey(f"{base}/experiments?limit=50", c, args.requests, args.seconds)
            )
            cells.setdefault("post", []).append(
                hey(
                    f"{base}/experiments",
                    c,
                    min(args.requests, 200),
                    args.seconds,
                    method="POST",
                    body=json.dumps({**SPEC, "epochs": 1}),
                )
            )

        # /health while 16 cold analyses run.
        cold = [f"{base}/experiments/{clone(sessions, trained)}/pca" for _ in range(16)]
        health: dict[str, Any] = {}

        def probe() -> None:
            health.update(hey(f"{base}/health", 1, 200, 20))

        prober = threading.Thread(target=probe)
        prober.start()
        analyses = [
            threading.Thread(target=lambda u=url: urllib.request.urlopen(u, timeout=120).read())
            for url in cold
        ]
        for thread in analyses:
            thread.start()
        for thread in [*analyses, prober]:
            thread.join()
        rss_after = rss_mib(api.pid)

        at = {cell: {r["c"]: r for r in rows} for cell, rows in cells.items()}
        top = max(levels)
        ratio = at["pca_warm"][top].get("rps", 0) / max(at["distances"][top].get("rps", 1e-9), 1e-9)
        errors = sum(r["errors"] for rows in cells.values() for r in rows) + health.get("errors", 0)
        print(json.dumps({
            "benchmark": "load", "snapshots": 5 * 20, "cells": cells,
            "health_during_16_cold": health, "rss_mib_before": rss_before,
            "rss_mib_after": rss_after, "warm_pca_vs_distances_rps_at_max_c": round(ratio, 2),
            "targets": {
                "zero_errors": errors == 0,
                "warm_pca_at_least_half_distances": ratio >= 0.5,
                "health_p99_le_100ms": health.get("p99_ms", 1e9) <= 100,
            },
        }))  # fmt: skip
    finally:
        api.terminate()
        api.wait(30)


if __name__ == "__main__":
    main()

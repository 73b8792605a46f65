"""Benchmark: PCA of large trajectories by sharded worker tasks, beside the expert's hand path.

For each parameter count P (``--params``, default 1e6,1e7,5e7,1e8): ``--runs`` synthetic
trajectories of ``--snapshots`` float32 snapshots (random walks with drift) are uploaded through
the API (``PUT /experiments/{id}/runs/{run}/snapshots/{epoch}``) of a service started for the
benchmark (SQLite, a local snapshot directory, Redis as the broker when it answers on
127.0.0.1:6379, else the embedded broker), with ``WEIGHTSPACE_INLINE_ANALYSIS_MAX_BYTES=0`` so
that the PCA is computed by worker processes (``--pool solo``, one BLAS thread each), sharded
over parameters. Then, in the same run:

hand path   the expert's: ``numpy.memmap`` of the same stored bytes, chunked float64 ``X Xᵀ`` of the
            deltas from the first snapshot, centring, ``numpy.linalg.eigh``
read floor  the disk's read bandwidth for those bytes: every snapshot's parameters read once,
            sequentially, in 8 MiB reads
pca cold    ``GET /experiments/{id}/pca`` with no cached Gram (and the snapshot files evicted from
            the page cache), polled until 200, with 1 and then 2 worker processes
pca warm    the same request again (the Gram is cached)

Before every cold measurement the snapshot files are dropped from the page cache
(``posix_fadvise(DONTNEED)``, these files only). While the cold PCA runs, ``/health`` is asked
every 20 ms; its p99 latency is reported. Peak RSS is each process's ``VmHWM``.

One JSON line per P: upload MB/s, read bandwidth, times, ratios (cold / hand, cold / read floor,
1 worker / 2 workers), API and worker peak RSS, ``/health`` p99, and the largest difference of
the explained-variance ratios against the hand path (relative to the largest ratio).

Usage: ``python bench/scale.py [--params 1e6,1e7] [--runs 2] [--snapshots 20] [--components 5]
[--workdir DIR] [--shard-params N]``. Disk: about ``runs x snapshots x P x 4`` bytes per P,
deleted after it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import mmap
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from safetensors.numpy import save as st_save

from weightspace.snapshots import HEADER_PROBE_BYTES, parse_header, snapshot_key

READ_BYTES = 8 << 20
HAND_CHUNK = 1 << 18  # elements per chunk of the hand path: 40 snapshots -> 80 MiB of float64


def redis_url() -> str | None:
    """A Redis database of the benchmark's own if Redis answers on 127.0.0.1:6379."""
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
    except OSError:
        return None
    return f"redis://127.0.0.1:6379/{random.randint(1, 15)}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def peak_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


class Service:
    """The API and its workers as child processes of this benchmark, all logging to one file."""

    def __init__(self, home: Path, broker: str | None, shard_params: int) -> None:
        self.home = home
        self.log = home / "processes.log"
        home.mkdir(parents=True, exist_ok=True)
        self.env = {
            **os.environ,
            "WEIGHTSPACE_HOME": str(home),
            "WEIGHTSPACE_INLINE_ANALYSIS_MAX_BYTES": "0",
            "WEIGHTSPACE_GRAM_SHARD_PARAMETERS": str(shard_params),
            "WEIGHTSPACE_MAX_PARAMETERS": str(2**31 - 1),
            "WEIGHTSPACE_MAX_UPLOAD_BYTES": str(2**33),
            "WEIGHTSPACE_MAX_STORED_BYTES": str(2**42),
        }
        if broker is not None:
            self.env["WEIGHTSPACE_BROKER_URL"] = broker
        self.url = f"http://127.0.0.1:{free_port()}"
        port = self.url.rsplit(":", 1)[1]
        api = [sys.executable, "-m", "weightspace_service", "--port", port]
        self.api = self._spawn(api, WEIGHTSPACE_LOG_LEVEL="WARNING")
        self.workers: list[subprocess.Popen[bytes]] = []
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or self.api.poll() is not None:
                raise RuntimeError(f"the API did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.3)

    def _spawn(self, argv: list[str], **extra: str) -> subprocess.Popen[bytes]:
        with self.log.open("ab") as out:
            return subprocess.Popen(
                argv,
                env={**self.env, **extra},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def start_workers(self, count: int) -> None:
        """``count`` fresh worker processes (solo pool, one BLAS thread each), once ready."""
        self.stop_workers()
        before = self.log.read_text(errors="replace").count(" ready.")
        one = {v: "1" for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
        for i in range(count):
            argv = [sys.executable, "-m", "weightspace_worker", "--queues", "cpu"]
            argv += ["--pool", "solo", "--hostname", f"bench{i}-{uuid.uuid4().hex[:6]}@%h"]
            argv += ["--loglevel", "info"]
            self.workers.append(self._spawn(argv, **one))
        deadline = time.monotonic() + 120
        while self.log.read_text(errors="replace").count(" ready.") < before + count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"workers did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.2)

    def worker_peak_mib(self) -> float:
        return max(peak_mib(w.pid) for w in self.workers)

    def stop_workers(self) -> None:
        for worker in self.workers:
            os.killpg(worker.pid, 15)
            worker.wait(timeout=60)
        self.workers = []

    def close(self) -> None:
        self.stop_workers()
        os.killpg(self.api.pid, 15)
        self.api.wait(timeout=60)


def trajectories(p: int, runs: int, snapshots: int, seed: int) -> Any:
    """(run, epoch, float32 vector): random walks with drift from an initialisation-like start."""
    rng = np.random.default_rng(seed)
    for run in range(runs):
        x = rng.normal(0.0, 0.05, p).astype(np.float32)
        drift = rng.normal(0.0, 2e-3, p).astype(np.float32)
        for epoch in range(snapshots):
            yield run, epoch, x
            x = x + drift + rng.normal(0.0, 1e-3, p).astype(np.float32)


def upload(service: Service, p: int, runs: int, snapshots: int, seed: int) -> tuple[str, float]:
    """The experiment's id and the upload rate in MB/s (bodies / time spent in the PUTs)."""
    with httpx.Client(base_url=service.url, timeout=600) as client:
        created = client.post("/experiments", json={"source": "upload", "replicas": runs})
        created.raise_for_status()
        experiment = str(created.json()["id"])
        sent, seconds = 0, 0.0
        for run, epoch, x in trajectories(p, runs, snapshots, seed):
            body = st_save({"w": x})
            headers = {
                "Content-Type": "application/octet-stream",
                "X-Checksum-Sha256": hashlib.sha256(body).hexdigest(),
            }
            start = time.perf_counter()
            answer = client.put(
                f"/experiments/{experiment}/runs/{run}/snapshots/{epoch}",
                content=body,
                headers=headers,
            )
            seconds += time.perf_counter() - start
            answer.raise_for_status()
            sent += len(body)
            del body
        client.post(f"/experiments/{experiment}/complete").raise_for_status()
    return experiment, sent / seconds / 1e6


def stored_files(home: Path, experiment: str, runs: int, snapshots: int) -> list[tuple[Path, int]]:
    """Each stored snapshot's file and the offset of its parameters, in (run, epoch) order."""
    out = []
    for run in range(runs):
        for epoch in range(snapshots):
            path = home / "snapshots" / snapshot_key(experiment, run, epoch)
            with path.open("rb") as f:
                header = parse_header(f.read(HEADER_PROBE_BYTES))
            out.append((path, header.params_range()[0]))
    return out


def evict(files: list[tuple[Path, int]]) -> None:
    """Drop these files (only) from the page cache, so that the next read comes from the disk."""
    for path, _ in files:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def read_floor(files: list[tuple[Path, int]], p: int) -> tuple[float, float]:
    """(seconds, MB/s) to read every snapshot's parameter bytes once, cold."""
    evict(files)
    start = time.perf_counter()
    for path, offset in files:
        with path.open("rb", buffering=0) as f:
            f.seek(offset)
            left = 4 * p
            while left > 0 and (chunk := f.read(min(READ_BYTES, left))):
                left -= len(chunk)
    seconds = time.perf_counter() - start
    return seconds, len(files) * 4 * p / seconds / 1e6


def hand_path(files: list[tuple[Path, int]], p: int) -> tuple[float, np.ndarray]:
    """The expert's PCA, cold: (seconds, explained-variance ratios of all components)."""
    evict(files)
    start = time.perf_counter()
    maps = [np.memmap(path, dtype="<f4", mode="r", offset=off, shape=(p,)) for path, off in files]
    for m in maps:  # read ahead, as an expert would ask of a cold page cache
        m._mmap.madvise(mmap.MADV_SEQUENTIAL)  # type: ignore[attr-defined]
    n = len(maps)
    gram = np.zeros((n, n))
    block = np.empty((n, HAND_CHUNK))
    for lo in range(0, p, HAND_CHUNK):
        hi = min(lo + HAND_CHUNK, p)
        rows = block[:, : hi - lo]
        for i, m in enumerate(maps):
            rows[i] = m[lo:hi]
        rows[1:] -= rows[0]  # deltas from the first snapshot: precision far from the origin
        rows[0] = 0.0
        gram += rows @ rows.T
    centre = np.eye(n) - 1.0 / n
    eigenvalues = np.clip(np.linalg.eigvalsh(centre @ gram @ centre)[::-1], 0.0, None)
    seconds = time.perf_counter() - start
    return seconds, eigenvalues / eigenvalues.sum()


def pca(service: Service, experiment: str, components: int) -> tuple[float, list[float], float]:
    """(seconds until 200, explained-variance ratios, /health p99 ms meanwhile)."""
    latencies: list[float] = []
    done = threading.Event()

    def probe() -> None:
        with httpx.Client(base_url=service.url, timeout=30) as client:
            while not done.is_set():
                start = time.perf_counter()
                client.get("/health").raise_for_status()
                latencies.append(time.perf_counter() - start)
                time.sleep(0.02)

    prober = threading.Thread(target=probe, daemon=True)
    prober.start()
    path = f"/experiments/{experiment}/pca?components={components}"
    with httpx.Client(base_url=service.url, timeout=600) as client:
        start = time.perf_counter()
        while (answer := client.get(path)).status_code == 202:
            time.sleep(0.02)
        seconds = time.perf_counter() - start
    done.set()
    prober.join()
    answer.raise_for_status()
    p99 = float(np.percentile(latencies, 99)) * 1e3 if latencies else float("nan")
    return seconds, answer.json()["explained_variance_ratio"], p99


def cold_pca(service: Service, experiment: str, files: list[tuple[Path, int]], k: int) -> Any:
    """PCA with no cached Gram (whole or partial) and the snapshot files evicted."""
    shutil.rmtree(
        service.home / "snapshots" / "experiments" / uuid.UUID(experiment).hex / "gram",
        ignore_errors=True,
    )
    evict(files)
    return pca(service, experiment, k)


def measure(p: int, args: argparse.Namespace, broker: str | None) -> dict[str, Any]:
    shard_params = args.shard_params or min(4_000_000, math.ceil(p / 8))
    home = Path(tempfile.mkdtemp(prefix=f"scale-{p}-", dir=args.workdir))
    service = Service(home, broker, shard_params)
    try:
        experiment, upload_mb_s = upload(service, p, args.runs, args.snapshots, args.seed)
        files = stored_files(home, experiment, args.runs, args.snapshots)
        floor_s, read_mb_s = read_floor(files, p)
        hand_s, hand_ratio = hand_path(files, p)
        service.start_workers(1)
        cold1, ratio, health1 = cold_pca(service, experiment, files, args.components)
        warm1, _, _ = pca(service, experiment, args.components)
        worker1 = service.worker_peak_mib()
        service.start_workers(2)
        cold2, ratio2, health2 = cold_pca(service, experiment, files, args.components)
        worker2 = service.worker_peak_mib()
        api_peak = peak_mib(service.api.pid)
    finally:
        service.close()
        shutil.rmtree(home, ignore_errors=True)
    k = args.components
    diff = max(
        float(np.max(np.abs(np.asarray(r) - hand_ratio[:k]))) / float(hand_ratio[0])
        for r in (ratio, ratio2)
    )
    return {
        "params": p,
        "snapshots": args.runs * args.snapshots,
        "gib": round(args.runs * args.snapshots * 4 * p / 2**30, 3),
        "shard_params": shard_params,
        "upload_mb_s": round(upload_mb_s, 1),
        "read_mb_s": round(read_mb_s, 1),
        "read_floor_s": round(floor_s, 3),
        "hand_s": round(hand_s, 3),
        "pca_cold_1w_s": round(cold1, 3),
        "pca_warm_s": round(warm1, 3),
        "pca_cold_2w_s": round(cold2, 3),
        "cold_vs_hand": round(cold1 / hand_s, 2),
        "cold_vs_floor": round(cold1 / floor_s, 2),
        "speedup_2w": round(cold1 / cold2, 2),
        "api_peak_mib": round(api_peak, 1),
        "worker_peak_mib": round(max(worker1, worker2), 1),
        "health_p99_ms": round(max(health1, health2), 1),
        "max_evr_rel_diff": float(f"{diff:.2e}"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="1e6,1e7,5e7,1e8")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--snapshots", type=int, default=20)
    parser.add_argument("--components", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shard-params", type=int, default=0, help="default: P/8, at most 4e6")
    parser.add_argument("--workdir", default=None, help="where the stores go (default: temp)")
    args = parser.parse_args()
    broker = redis_url()
    try:
        for p in (int(float(v)) for v in args.params.split(",")):
            print(json.dumps(measure(p, args, broker)), flush=True)
    finally:
        if broker is not None:
            import redis

            redis.Redis.from_url(broker).flushdb()


if __name__ == "__main__":
    main()

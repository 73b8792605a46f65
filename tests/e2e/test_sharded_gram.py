"""A Gram sharded over parameters survives a killed worker: the lost shard is computed again,
the shards are summed exactly once, and the PCA equals the direct computation.

Real processes on PostgreSQL, Redis (default visibility timeout: the broker does not hand the
lost task back; the job not advancing does) and a local snapshot directory. Every analysis goes
to the workers (an inline limit of 0 bytes); each shard task waits a second, so that the first
worker is killed with SIGKILL while it holds one.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import redis

from tests.e2e.scenario import free_port, stop, wait_healthy
from weightspace import analysis
from weightspace_client import WeightspaceClient

pytestmark = [pytest.mark.integration, pytest.mark.slow]

P, RUNS, EPOCHS, SHARD = 6000, 2, 5, 1500
JOINED = "joined the Gram of"


def walks() -> dict[tuple[int, int], np.ndarray]:
    rng = np.random.default_rng(3)
    out = {}
    for run in range(RUNS):
        x = rng.normal(size=P)
        for epoch in range(EPOCHS):
            x = x + 0.02 + 0.05 * rng.normal(size=P)
            out[(run, epoch)] = x.astype(np.float32)
    return out


def start_worker(env: dict[str, str], log: Path, name: str) -> subprocess.Popen:  # type: ignore[type-arg]
    argv = [sys.executable, "-m", "weightspace_worker", "--queues", "cpu", "--pool", "solo"]
    with log.open("ab") as out:
        return subprocess.Popen(
            [*argv, "--hostname", f"{name}@%h"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_for(log: Path, text: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while text not in log.read_text(errors="replace"):
        if time.monotonic() > deadline:
            raise AssertionError(f"{text!r} never logged:\n{log.read_text()[-4000:]}")
        time.sleep(0.1)


def test_killed_shard_worker_is_replaced_and_joined_once(
    tmp_path: Path, fresh_postgres_url: str
) -> None:
    broker = f"redis://127.0.0.1:6379/{random.randint(1, 15)}"
    env = {
        **os.environ,
        "WEIGHTSPACE_HOME": str(tmp_path / "home"),
        "WEIGHTSPACE_DATABASE_URL": fresh_postgres_url,
        "WEIGHTSPACE_BROKER_URL": broker,
        "WEIGHTSPACE_INLINE_ANALYSIS_MAX_BYTES": "0",
        "WEIGHTSPACE_GRAM_SHARD_PARAMETERS": str(SHARD),
        "WEIGHTSPACE_GRAM_SHARD_DELAY": "1",
        "WEIGHTSPACE_REQUEUE_AFTER": "4",
    }
    env.pop("WEIGHTSPACE_VISIBILITY_TIMEOUT", None)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "processes.log"
    api = subprocess.Popen(
        [sys.executable, "-m", "weightspace_service", "--port", str(port)],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    workers = []
    params = walks()
    try:
        wait_healthy(url, api, log)
        with WeightspaceClient(url, timeout=60) as client:
            experiment = client.create_upload(replicas=RUNS)
            for (run, epoch), vector in params.items():
                client.upload(experiment["id"], run, epoch, {"w": vector})
            client.complete(experiment["id"])
        workers.append(start_worker(env, log, "first"))
        path = f"{url}/experiments/{experiment['id']}/pca?components=3"
        first = httpx.get(path, timeout=30)
        assert first.status_code == 202, first.text
        assert first.json()["status"] == "queued"
        assert first.headers["Location"].endswith("/pca?components=3")
        wait_for(log, "weightspace.compute_gram_shard[")  # the first shard task has started
        time.sleep(0.3)
        os.killpg(workers[0].pid, 9)  # mid-shard: its task is never acknowledged
        workers[0].wait()
        workers.append(start_worker(env, log, "second"))
        deadline = time.monotonic() + 180
        while (answer := httpx.get(path, timeout=30)).status_code == 202:
            assert time.monotonic() < deadline, log.read_text()[-4000:]
            time.sleep(0.5)
        assert answer.status_code == 200, answer.text
        wait_for(log, JOINED)
        # the same snapshots as an analysis across experiments: its own Gram, on the workers too
        body = {"kind": "pca", "components": 3, "selection": [{"experiment": experiment["id"]}]}
        joint = httpx.post(f"{url}/analyses", json=body, timeout=30)
        assert joint.status_code == 202, joint.text
        while (joint := httpx.get(url + joint.headers["Location"], timeout=30)).status_code == 202:
            assert time.monotonic() < deadline, log.read_text()[-4000:]
            time.sleep(0.5)
        assert joint.json()["status"] == "succeeded", joint.text
        time.sleep(2)  # any shard task still queued (a re-planned duplicate) runs meanwhile
    finally:
        for process in [*workers, api]:
            stop(process)
        redis.Redis.from_url(broker).flushdb()
    text = log.read_text(errors="replace")
    mine = f"{JOINED} gram/{experiment['id'].replace('-', '')}/"
    assert text.count(mine) == 1, text[-4000:]  # summed once, though a shard ran twice
    assert text.count(JOINED) == 2, text[-4000:]  # and once for the joint analysis
    # the killed worker's shard was never acknowledged: the stalled job was planned again
    assert text.count("Task weightspace.compute_gram[") >= 2 * 2, text[-4000:]  # received+done
    order = sorted(params)
    gram = analysis.gram([analysis.ArrayVector(params[k]) for k in order])
    expected = analysis.pca(gram, 3)
    body = answer.json()
    assert [(p["run"], p["epoch"]) for p in body["points"]] == order
    np.testing.assert_allclose(
        body["explained_variance_ratio"], expected.explained_variance_ratio, rtol=1e-9
    )
    coordinates = np.array([p["coordinates"] for p in body["points"]])
    scale = np.abs(expected.coordinates).max()
    np.testing.assert_allclose(coordinates, expected.coordinates, rtol=0, atol=1e-9 * scale)
    np.testing.assert_allclose(
        joint.json()["pca"]["explained_variance_ratio"],
        expected.explained_variance_ratio,
        rtol=1e-9,
    )

"""A third party's view of the contract: a client generated from openapi/openapi.json alone.

openapi-python-client generates a package from the committed document (no code of ours), which
then drives a real API process and a real Celery worker through submit -> wait -> PCA ->
distances -> import (an upload experiment receives snapshots, then is completed). Its answers
are checked against what the service computes: the imported snapshots of one run have the same
PCA as that run has in the trained experiment.
"""

from __future__ import annotations

import importlib
import io
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from scripts.openapi import DOCUMENT
from tests.e2e.scenario import free_port, stop, wait_healthy
from tests.e2e.test_worker_crash import start_worker

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: The package openapi-python-client names after the document's title ("weightspace API").
PACKAGE = "weightspace_api_client"
SPEC = {
    "name": "generated-client",
    "seed": 5,
    "dataset": {"name": "digits", "train_size": 200, "test_size": 100},
    "model": {"kind": "mlp", "hidden": [8]},
    "epochs": 2,
    "replicas": 2,
}
WAIT_S = 180


def _generator() -> str:
    """The openapi-python-client command (the dev extra installs it beside this Python)."""
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    found = shutil.which("openapi-python-client", path=path)
    if found is None:
        pytest.fail("openapi-python-client is missing: pip install -e '.[dev]'")
    return found


@pytest.fixture
def generated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The generated package, imported from a temporary folder (never installed)."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        [_generator(), "generate", "--path", str(DOCUMENT), "--meta", "none"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # The default name comes from the title, and is not that of our own client's package.
    assert (tmp_path / PACKAGE / "__init__.py").is_file(), sorted(os.listdir(tmp_path))
    assert not (tmp_path / "weightspace_client").exists()
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


@pytest.fixture
def deployment(tmp_path: Path, fresh_postgres_url: str) -> Iterator[str]:
    """An API process and a worker process (PostgreSQL, Redis); yields the API's URL."""
    broker = f"redis://127.0.0.1:6379/{random.randint(1, 15)}"
    env = {
        **os.environ,
        "WEIGHTSPACE_HOME": str(tmp_path / "home"),
        "WEIGHTSPACE_DATABASE_URL": fresh_postgres_url,
        "WEIGHTSPACE_BROKER_URL": broker,
        "WEIGHTSPACE_AUTH": "none",
    }
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "processes.log"
    with log.open("wb") as out:
        api = subprocess.Popen(
            [sys.executable, "-m", "weightspace_service", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    processes = [api]
    try:
        wait_healthy(url, api, log)
        processes.append(start_worker(env, log, f"generated-{port}"))
        yield url
    finally:
        for process in processes:
            stop(process)
        redis.Redis.from_url(broker).flushdb()


def _module(package: Any, name: str) -> Any:
    return importlib.import_module(f"{package.__name__}.{name}")


def test_a_generated_client_submits_waits_analyses_and_imports(
    generated: Any, deployment: str
) -> None:
    create = _module(generated, "api.experiments.create_experiment")
    get_experiment = _module(generated, "api.experiments.get_experiment")
    download = _module(generated, "api.experiments.download_snapshot")
    get_pca = _module(generated, "api.analysis.get_pca")
    get_distances = _module(generated, "api.analysis.get_distances")
    upload = _module(generated, "api.uploads.upload_snapshot")
    complete = _module(generated, "api.uploads.complete_experiment")
    models = _module(generated, "models")
    types = _module(generated, "types")

    client = generated.AuthenticatedClient(
        base_url=deployment, token="unused", raise_on_unexpected_status=True
    )
    # submit
    submitted = create.sync_detailed(client=client, body=models.ExperimentSpec.from_dict(SPEC))
    assert submitted.status_code == 202, submitted.content
    experiment = submitted.parsed
    assert isinstance(experiment, models.ExperimentOut)
    assert submitted.headers["Location"] == f"/experiments/{experiment.id}"

    # wait
    deadline = time.monotonic() + WAIT_S
    while (status := str(experiment.status)) in ("queued", "running"):
        assert time.monotonic() < deadline, f"still {status} after {WAIT_S} s"
        time.sleep(0.5)
        experiment = get_experiment.sync(experiment_id=experiment.id, client=client)
    assert status == "succeeded", experiment.error
    assert [str(run.status) for run in experiment.runs] == ["succeeded", "succeeded"]

    # PCA: one point per snapshot (epochs 0, 1, 2 of both runs)
    pca = get_pca.sync(experiment_id=experiment.id, client=client, components=2)
    assert isinstance(pca, models.PCAOut), pca
    assert pca.complete is True
    assert sorted((p.run, p.epoch) for p in pca.points) == [
        (run, epoch) for run in (0, 1) for epoch in (0, 1, 2)
    ]
    assert all(len(p.coordinates) == 2 for p in pca.points)
    assert 0 < pca.cumulative_variance_ratio[-1] <= 1 + 1e-9

    # distances between the runs at the final epoch
    distances = get_distances.sync(experiment_id=experiment.id, client=client)
    assert isinstance(distances, models.DistancesOut), distances
    assert distances.epoch == 2 and distances.runs == [0, 1]
    assert distances.distances[0][0] == 0 and distances.distances[0][1] > 0
    assert distances.distances[0][1] == pytest.approx(distances.distances[1][0])

    # import: run 0's snapshots, downloaded as state dicts, uploaded into a new experiment
    created = create.sync_detailed(
        client=client, body=models.UploadSpec.from_dict({"source": "upload", "name": "imported"})
    )
    assert created.status_code == 201, created.content
    imported = created.parsed
    for epoch in (0, 1, 2):
        state_dict = download.sync(
            experiment_id=experiment.id,
            run=0,
            epoch=epoch,
            client=client,
            format_=models.DownloadSnapshotFormat.STATE_DICT,
        )
        assert isinstance(state_dict, types.File), state_dict
        stored = upload.sync_detailed(
            experiment_id=imported.id,
            run=0,
            epoch=epoch,
            client=client,
            body=types.File(payload=io.BytesIO(state_dict.payload.read())),
        )
        assert stored.status_code == 201, stored.content
        assert stored.parsed.epoch == epoch
    finished = complete.sync(experiment_id=imported.id, client=client)
    assert isinstance(finished, models.ExperimentOut), finished
    assert str(finished.status) == "succeeded"

    # The same vectors, so the same PCA as run 0's in the trained experiment.
    mine = get_pca.sync(experiment_id=imported.id, client=client, components=2)
    theirs = get_pca.sync(experiment_id=experiment.id, client=client, components=2, runs=[0])
    assert [p.epoch for p in mine.points] == [p.epoch for p in theirs.points] == [0, 1, 2]
    for a, b in zip(mine.points, theirs.points, strict=True):
        assert a.coordinates == pytest.approx(b.coordinates, rel=1e-6, abs=1e-9)
    assert mine.explained_variance == pytest.approx(theirs.explained_variance, rel=1e-6)

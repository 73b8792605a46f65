"""Landscape planes and barriers across experiments: cached worker jobs, 202 then 200, computed
by a real Celery worker process (PostgreSQL, a SQLite broker, a file snapshot store)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from typer.testing import CliRunner

from tests.integration.serving import api_and_worker
from weightspace_client import ApiError, WeightspaceClient
from weightspace_client.cli import app as cli

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SPEC = {
    "dataset": {"name": "digits", "train_size": 200, "test_size": 100},
    "model": {"kind": "mlp", "hidden": [8]},
    "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9},
    "epochs": 4,
    "batch_size": 32,
    "snapshot_every": 1,
    "replicas": 2,
}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("landscape")


@pytest.fixture(scope="module")
def ws(home: Path, migrated_postgres_url: str) -> Iterator[WeightspaceClient]:
    with (
        api_and_worker(home, migrated_postgres_url) as url,
        WeightspaceClient(url, timeout=60) as client,
    ):
        yield client


def until_ready(http: httpx.Client, path: str, first: httpx.Response) -> httpx.Response:
    """Poll ``Location`` while the answer is 202 (the worker computing)."""
    response = first
    deadline = time.monotonic() + 180
    while response.status_code == 202:
        assert time.monotonic() < deadline, f"{path} still pending"
        assert response.headers["Retry-After"].isdigit()
        time.sleep(0.5)
        response = http.get(response.headers["Location"])
    return response


def test_a_landscape_plane_is_queued_then_served_from_the_cache(ws: WeightspaceClient) -> None:
    eid = ws.submit(SPEC)["id"]
    assert ws.wait(eid, poll=0.5, timeout=180)["status"] == "succeeded"
    path = f"/experiments/{eid}/landscape?run=1&resolution=5&normalisation=filter"
    first = ws.http.get(path)
    assert first.status_code == 202 and first.json()["status"] == "queued"
    assert first.headers["Location"].startswith(f"/experiments/{eid}/landscape?run=1")
    plane = until_ready(ws.http, path, first)
    assert plane.status_code == 200, plane.text
    body = plane.json()
    assert body["run"] == 1 and body["normalisation"] == "filter"
    assert body["epochs"] == [0, 1, 2, 3, 4]
    assert np.asarray(body["train_loss"]).shape == (5, 5) == np.asarray(body["test_loss"]).shape
    assert body["trajectory"][-1] == pytest.approx([0.0, 0.0], abs=1e-6)
    assert body["train_examples"] == 200 and body["test_examples"] == 100
    # The centre's train loss is the final snapshot's (full sets: both are under the cap).
    final = list(ws.list_snapshots(eid, 1))[-1]
    assert body["train_loss"][2][2] == pytest.approx(final["metrics"]["train_loss"], rel=1e-4)
    assert ws.http.get(path).json() == body  # now from the cache, at once
    assert ws.landscape(eid, run=1, resolution=5, normalisation="filter") == body
    svg = ws.http.get(path.replace("landscape?", "landscape.svg?"))
    assert svg.status_code == 200 and svg.headers["content-type"] == "image/svg+xml"
    assert svg.content.lstrip().startswith(b"<?xml") and b"<svg" in svg.content

    for bad, field in (
        ("resolution=4", "query.resolution"),
        ("resolution=52", "query.resolution"),
        ("normalisation=layer", "query.normalisation"),
        ("margin=-1", "query.margin"),
        ("run=7", "run"),
        ("colour=red", "query.colour"),
    ):
        response = ws.http.get(f"/experiments/{eid}/landscape?{bad}")
        assert response.status_code == 422, (bad, response.text)
        assert response.json()["errors"][0]["field"].endswith(field), response.json()


def test_uploads_have_no_landscape(ws: WeightspaceClient) -> None:
    eid = ws.create_upload(replicas=1)["id"]
    for epoch in range(3):
        ws.upload(eid, 0, epoch, {"w": np.full(4, float(epoch))})
    ws.complete(eid)
    response = ws.http.get(f"/experiments/{eid}/landscape")
    assert response.status_code == 409
    assert response.json()["title"] == "Not available for this experiment"
    assert "declare none the service can build" in response.json()["detail"]
    assert f"/experiments/{eid}/landscape/plane" in response.json()["detail"]


def test_barriers_across_experiments_are_a_worker_job(ws: WeightspaceClient) -> None:
    first = ws.submit(SPEC)["id"]
    second = ws.submit({**SPEC, "seed": 9})["id"]
    for eid in (first, second):
        assert ws.wait(eid, poll=0.5, timeout=180)["status"] == "succeeded"
    selection = [{"experiment": first, "runs": [0]}, {"experiment": second, "epochs": [2, 4]}]
    body = {"kind": "barriers", "selection": selection}
    posted = ws.http.post("/analyses", json=body)
    assert posted.status_code == 202 and posted.json()["status"] == "running"
    done = until_ready(ws.http, "/analyses", posted)
    assert done.status_code == 200, done.text
    result = done.json()
    assert result["status"] == "succeeded" and result["kind"] == "barriers"
    lines = result["barriers"]["lines"]
    pairs = [line for line in lines if line["kind"] == "pair"]
    ends = {
        (p["a"]["experiment"], p["a"]["run"], p["b"]["experiment"], p["b"]["run"]) for p in pairs
    }
    # Three selected runs (first's run 0, second's runs 0 and 1): three pairs of final points.
    assert ends == {(first, 0, second, 0), (first, 0, second, 1), (second, 0, second, 1)}
    assert all(p["a"]["epoch"] == 4 and p["b"]["epoch"] == 4 for p in pairs)
    assert all(len(line["line"]["train_loss"]) == 25 for line in lines)
    assert {line["kind"] for line in lines} == {"pair", "control"}
    again = ws.http.post("/analyses", json=body)
    assert again.status_code == 200 and again.json() == result
    assert ws.analyse("barriers", selection) == result

    upload = ws.create_upload(replicas=1)["id"]
    ws.upload(upload, 0, 0, {"w": np.zeros(4)})
    ws.complete(upload)
    mixed = ws.http.post(
        "/analyses",
        json={"kind": "barriers", "selection": [{"experiment": first}, {"experiment": upload}]},
    )
    assert mixed.status_code == 422
    assert mixed.json()["errors"][0]["field"] == "selection.1.experiment"


def test_the_client_and_the_cli_wait_for_a_plane(ws: WeightspaceClient, tmp_path: Path) -> None:
    eid = ws.submit(SPEC)["id"]
    assert ws.wait(eid, poll=0.5, timeout=180)["status"] == "succeeded"
    options = {"run": 0, "resolution": 5, "margin": 0.5}
    assert ws.landscape_svg(eid, **options) is None  # queued: 202
    queued = ws.landscape(eid, **options)
    assert queued["status"] == "queued" and queued["experiment_id"] == eid
    plane = ws.landscape(eid, wait=True, poll=0.2, timeout=180, **options)
    assert plane["status"] == "ready" and plane["run"] == 0 and plane["normalisation"] == "none"
    assert np.asarray(plane["train_loss"]).shape == (5, 5)
    assert ws.http.get(f"/experiments/{eid}/landscape", params=options).json() == plane
    svg = ws.landscape_svg(eid, **options)
    assert svg is not None and b"<svg" in svg

    figure = tmp_path / "plane.svg"
    args = ["landscape", eid, "--resolution", "5", "--margin", "0.5", "--url", ws.base_url]
    result = CliRunner().invoke(cli, [*args, "--json", "--svg", str(figure)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == plane
    assert b"<svg" in figure.read_bytes()
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "final snapshot" in result.output and "PC1 explains" in result.output

    with pytest.raises(ApiError) as refused:
        ws.landscape(eid, run=5)
    assert refused.value.status == 422


def _mentioning(root: Path, experiment_id: str) -> list[str]:
    """The stored files whose name or content names the experiment."""
    hexid = uuid.UUID(experiment_id).hex
    return [
        str(path.relative_to(root))
        for path in root.rglob("*")
        if path.is_file()
        and (
            hexid in str(path)
            or experiment_id.encode() in path.read_bytes()
            or hexid.encode() in path.read_bytes()
        )
    ]


def test_deleting_an_experiment_deletes_its_planes_and_the_barriers_analyses_with_it(
    ws: WeightspaceClient, home: Path
) -> None:
    store = home / "snapshots"
    first = ws.submit({**SPEC, "replicas": 1, "seed": 3})["id"]
    second = ws.submit({**SPEC, "replicas": 1, "seed": 4})["id"]
    for eid in (first, second):
        assert ws.wait(eid, poll=0.5, timeout=180)["status"] == "succeeded"
        plane = ws.landscape(eid, resolution=5, wait=True, poll=0.2, timeout=180)
        assert plane["status"] == "ready"
    selection = [{"experiment": first}, {"experiment": second}]
    analysis = ws.analyse("barriers", selection, poll=0.2, timeout=180)
    assert analysis["status"] == "succeeded" and analysis["barriers"]
    assert any("landscape" in name for name in _mentioning(store, second))  # its plane

    ws.delete(second)  # not the analysis's first experiment
    assert _mentioning(store, second) == []
    assert ws.http.get(analysis["links"]["self"]).status_code == 404
    assert ws.landscape(first, resolution=5)["status"] == "ready"  # the other's stays

    ws.delete(first)
    assert _mentioning(store, first) == []

"""Uploaded experiments through the client against a live API on PostgreSQL: a random walk of
3 runs x 50 snapshots x 100,000 parameters, analysed exactly like scikit-learn and scipy; the
checks on uploads (layout, checksum, size, state) and the state-dict download."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from safetensors.numpy import save as np_save
from safetensors.torch import load_file
from scipy.spatial.distance import pdist, squareform
from sklearn.decomposition import PCA
from weightspace_app.infra.settings import Settings

from tests.integration.serving import serving
from weightspace_client import ApiError, WeightspaceClient
from weightspace_client.torch import SnapshotCallback
from weightspace_service.app import create_app

pytestmark = pytest.mark.integration

RUNS, EPOCHS = 3, 50
# Two tensors given out of order: the vector is "a.weight" (300 x 300) then "b.bias" (10,000).
SHAPES = {"b.bias": (10_000,), "a.weight": (300, 300)}
PARAMETERS = 100_000


def settings(tmp_path: Path, url: str, **extra: object) -> Settings:
    return Settings(
        home=tmp_path,
        database_url=url,
        broker_url=f"sqla+sqlite:///{tmp_path / 'broker.db'}",
        storage_url=f"file://{tmp_path / 'snapshots'}",
        **extra,  # type: ignore[arg-type]
    )


@pytest.fixture
def ws(tmp_path: Path, migrated_postgres_url: str) -> Iterator[WeightspaceClient]:
    app = create_app(settings(tmp_path, migrated_postgres_url))
    with serving(app) as url, WeightspaceClient(url, timeout=120) as client:
        yield client


def random_walk(seed: int) -> np.ndarray:
    """(RUNS, EPOCHS, PARAMETERS) float32: Gaussian steps from a shared start."""
    rng = np.random.default_rng(seed)
    start = rng.normal(size=PARAMETERS)
    steps = rng.normal(scale=0.05, size=(RUNS, EPOCHS - 1, PARAMETERS))
    walk = np.concatenate([np.broadcast_to(start, (RUNS, 1, PARAMETERS)), steps], axis=1)
    return np.cumsum(walk, axis=1).astype(np.float32)


def as_state_dict(vector: np.ndarray) -> dict[str, np.ndarray]:
    weight = vector[:90_000].reshape(300, 300)
    bias = vector[90_000:]
    return {"b.bias": bias.copy(), "a.weight": weight.copy()}


def signed(coordinates: np.ndarray) -> np.ndarray:
    """The service's sign convention: in each column the largest |entry| is positive."""
    biggest = coordinates[np.argmax(np.abs(coordinates), axis=0), np.arange(coordinates.shape[1])]
    return coordinates * np.where(biggest < 0, -1.0, 1.0)


def upload_walk(ws: WeightspaceClient, walk: np.ndarray, name: str) -> str:
    experiment = ws.create_upload(name=name, replicas=RUNS)
    assert experiment["status"] == "running" and experiment["source"] == "upload"  # type: ignore[typeddict-item]
    for run in range(RUNS):
        for epoch in range(EPOCHS):
            ws.upload(
                experiment["id"],
                run,
                epoch,
                as_state_dict(walk[run, epoch]),
                metrics={"train_loss": float(epoch)},
            )
    done = ws.complete(experiment["id"])
    assert done["status"] == "succeeded"
    return experiment["id"]


@pytest.mark.slow
def test_uploaded_random_walk_matches_sklearn_and_scipy(ws: WeightspaceClient) -> None:
    walk = random_walk(0)
    experiment_id = upload_walk(ws, walk, "walk")
    data = walk.reshape(RUNS * EPOCHS, PARAMETERS).astype(np.float64)

    pca = ws.pca(experiment_id, components=5)
    reference = PCA(n_components=5, svd_solver="full").fit(data)
    ours = np.array([p["coordinates"] for p in pca["points"]])
    theirs = signed(reference.transform(data))
    assert [(p["run"], p["epoch"]) for p in pca["points"]] == [
        (r, e) for r in range(RUNS) for e in range(EPOCHS)
    ]
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6 * np.abs(theirs).max())
    np.testing.assert_allclose(
        pca["explained_variance_ratio"], reference.explained_variance_ratio_, rtol=1e-6
    )

    for epoch in (0, 17, EPOCHS - 1):
        distances = ws.distances(experiment_id, epoch=epoch)
        expected = squareform(pdist(walk[:, epoch].astype(np.float64)))
        np.testing.assert_allclose(
            distances["distances"], expected, rtol=1e-6, atol=1e-6 * max(expected.max(), 1.0)
        )
    trajectory = ws.trajectory(experiment_id)
    steps = np.linalg.norm(np.diff(walk[1].astype(np.float64), axis=0), axis=1)
    np.testing.assert_allclose(
        trajectory["runs"][1]["points"][-1]["path_length"], steps.sum(), rtol=1e-6
    )
    assert trajectory["runs"][0]["points"][3]["metrics"]["train_loss"] == 3.0


def test_upload_checks_layout_checksum_state_and_round_trips(
    ws: WeightspaceClient, tmp_path: Path
) -> None:
    experiment = ws.create_upload(name="checks", replicas=2)
    eid = experiment["id"]
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    model[1].num_batches_tracked += 7  # an integer buffer, kept beside the vector
    callback = SnapshotCallback(ws, eid, model, run=0, every=2)
    assert callback(1) is None
    info = callback(2, metrics={"train_loss": 0.5})
    assert info is not None and info["parameters"] == 4 * 3 + 3 + 3 * 4  # weights, BN w/b/mean/var

    with pytest.raises(ApiError) as error:  # complete needs every run
        ws.complete(eid)
    assert error.value.status == 409 and "[1]" in str(error.value)

    other = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.BatchNorm1d(5))
    with pytest.raises(ApiError) as error:
        ws.upload(eid, 1, 0, other.state_dict())
    assert error.value.status == 422 and error.value.errors[0]["field"] == "body"
    assert "0.bias" in str(error.value)

    body = np_save({"x": np.zeros(3, np.float32)})
    for headers, field in [
        ({"X-Checksum-Sha256": "0" * 64}, "header.x-checksum-sha256"),
        ({"X-Metrics": "[1]"}, "header.x-metrics"),
        ({"X-Metrics": '{"loss": "nan"}'}, "header.x-metrics"),
    ]:
        response = ws.http.put(
            f"/experiments/{eid}/runs/1/snapshots/0", content=body, headers=headers
        )
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["field"] == field
    for bad, field in [(b"not safetensors", "body"), (b"", "body")]:
        response = ws.http.put(f"/experiments/{eid}/runs/1/snapshots/0", content=bad)
        assert response.status_code == 422 and response.json()["errors"][0]["field"] == field
    response = ws.http.put(f"/experiments/{eid}/runs/5/snapshots/0", content=body)
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "path.run"

    good = model.state_dict()
    digest = hashlib.sha256(b"").digest()  # Content-Digest that disagrees with the body
    import base64

    response = ws.http.put(
        f"/experiments/{eid}/runs/1/snapshots/0",
        content=np_save({k: v.numpy() for k, v in good.items()}),
        headers={"Content-Digest": f"sha-256=:{base64.b64encode(digest).decode()}:"},
    )
    assert response.status_code == 422
    ws.upload(eid, 1, 0, good)
    again = ws.upload(eid, 1, 0, good)  # replacing is allowed until complete
    assert again["epoch"] == 0
    assert ws.complete(eid)["status"] == "succeeded"
    with pytest.raises(ApiError) as error:
        ws.upload(eid, 1, 3, good)
    assert error.value.status == 409

    path = ws.download_state_dict(eid, 0, 2, tmp_path / "state.safetensors")
    restored = load_file(path)
    assert set(restored) == set(good)
    for name, tensor in good.items():
        assert restored[name].dtype == tensor.dtype
        assert torch.equal(restored[name], tensor)
    copy = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    copy.load_state_dict(restored)
    listed = list(ws.list_snapshots(eid, 0))
    assert [s["epoch"] for s in listed] == [2] and listed[0]["metrics"]["train_loss"] == 0.5


def test_float64_and_bfloat16_state_dicts(ws: WeightspaceClient, tmp_path: Path) -> None:
    eid = ws.create_upload(replicas=1)["id"]
    wide = {
        "w": torch.arange(6, dtype=torch.float64).reshape(2, 3) / 3,
        "h": torch.ones(2, dtype=torch.bfloat16),
    }
    ws.upload(eid, 0, 0, wide)
    restored = load_file(ws.download_state_dict(eid, 0, 0, tmp_path / "s.safetensors"))
    assert restored["w"].dtype == torch.float64 and torch.equal(restored["w"], wide["w"])
    assert restored["h"].dtype == torch.bfloat16 and torch.equal(restored["h"], wide["h"])


def test_upload_size_limit_and_trained_experiments_take_none(
    tmp_path: Path, migrated_postgres_url: str
) -> None:
    app = create_app(settings(tmp_path, migrated_postgres_url, max_upload_bytes=1000))
    with TestClient(app) as client:
        eid = client.post("/experiments", json={"source": "upload"}).json()["id"]
        big = np_save({"x": np.zeros(1000, np.float32)})
        response = client.put(f"/experiments/{eid}/runs/0/snapshots/0", content=big)
        assert response.status_code == 413, response.text
        assert "WEIGHTSPACE_MAX_UPLOAD_BYTES" in response.json()["detail"]
        bad = client.post("/experiments", json={"source": "upload", "replicas": 0})
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "replicas"
        assert json.loads(client.get(f"/experiments/{eid}").text)["spec"]["source"] == "upload"


def test_uploaded_experiment_cancels_and_deletes_but_never_retries(ws: WeightspaceClient) -> None:
    eid = ws.create_upload(replicas=1)["id"]
    ws.upload(eid, 0, 0, {"w": np.ones(4, np.float32)})
    assert ws.http.post(f"/experiments/{eid}/cancel").json()["status"] == "cancelled"
    retry = ws.http.post(f"/experiments/{eid}/retry")
    assert retry.status_code == 409 and "uploaded" in retry.json()["detail"]
    assert ws.http.delete(f"/experiments/{eid}").status_code in (200, 204)
    assert ws.http.get(f"/experiments/{eid}").status_code == 404


def test_a_failed_experiment_says_why_it_cannot_be_analysed(
    tmp_path: Path, migrated_postgres_url: str
) -> None:
    import uuid

    from weightspace_app.infra.db import Experiment

    app = create_app(settings(tmp_path, migrated_postgres_url))
    with TestClient(app) as client:
        eid = client.post("/experiments", json={"source": "upload"}).json()["id"]
        with app.state.sessions() as session:
            experiment = session.get(Experiment, uuid.UUID(eid))
            experiment.status, experiment.error = "failed", "RuntimeError: boom"
            session.commit()
        for path in ("pca", "distances", "trajectory"):
            response = client.get(f"/experiments/{eid}/{path}")
            assert response.status_code == 409, response.text
            assert response.json()["detail"] == "experiment failed: RuntimeError: boom"

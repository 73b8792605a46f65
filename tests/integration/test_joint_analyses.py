"""POST /analyses across experiments, against scikit-learn and scipy on the union of snapshots."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.distance import pdist, squareform
from sklearn.decomposition import PCA
from weightspace_app.infra.settings import Settings

from tests.integration.serving import serving
from weightspace_client import WeightspaceClient
from weightspace_service.app import create_app
from weightspace_service.params import MAX_SELECTED_EPOCHS

pytestmark = pytest.mark.integration
P = 3_000


@pytest.fixture
def ws(tmp_path: Path, migrated_postgres_url: str) -> Iterator[WeightspaceClient]:
    settings = Settings(
        home=tmp_path,
        database_url=migrated_postgres_url,
        broker_url=f"sqla+sqlite:///{tmp_path / 'broker.db'}",
        storage_url=f"file://{tmp_path / 'snapshots'}",
    )
    with serving(create_app(settings)) as url, WeightspaceClient(url, timeout=60) as client:
        yield client


def uploaded(ws: WeightspaceClient, data: np.ndarray, size: int = P) -> str:
    """An uploaded experiment of data[run, epoch] (float64 vectors split into two tensors)."""
    eid = ws.create_upload(replicas=data.shape[0])["id"]
    for run in range(data.shape[0]):
        for epoch in range(data.shape[1]):
            vector = data[run, epoch]
            ws.upload(eid, run, epoch, {"w": vector[: size // 2], "b": vector[size // 2 :]})
    ws.complete(eid)
    return eid


def signed(x: np.ndarray) -> np.ndarray:
    biggest = x[np.argmax(np.abs(x), axis=0), np.arange(x.shape[1])]
    return x * np.where(biggest < 0, -1.0, 1.0)


def test_joint_pca_and_distances_equal_sklearn_on_the_union(ws: WeightspaceClient) -> None:
    rng = np.random.default_rng(7)
    a = np.cumsum(rng.normal(size=(2, 5, P)), axis=1) + 3.0
    b = np.cumsum(rng.normal(size=(3, 4, P)), axis=1) - 1.0
    ea, eb = uploaded(ws, a), uploaded(ws, b)
    selection = [{"experiment": ea}, {"experiment": eb, "runs": [2, 0], "epochs": [1, 2, 3]}]
    # The rows: a's runs 0, 1 at every epoch, then b's runs 0, 2 at epochs 1..3.
    union = np.concatenate([a.reshape(-1, P), b[[0, 2]][:, 1:].reshape(-1, P)])
    expected = [(ea, r, e) for r in range(2) for e in range(5)]
    expected += [(eb, r, e) for r in (0, 2) for e in (1, 2, 3)]

    result = ws.analyse("pca", selection, components=3, poll=0.1, timeout=60)
    assert result["status"] == "succeeded" and result["complete"] is True
    assert [(s["experiment"], s["run"], s["epoch"]) for s in result["snapshots"]] == expected
    reference = PCA(n_components=3, svd_solver="full").fit(union)
    theirs = signed(reference.transform(union))
    ours = np.array(result["pca"]["coordinates"])
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6 * np.abs(theirs).max())
    np.testing.assert_allclose(
        result["pca"]["explained_variance"], reference.explained_variance_, rtol=1e-6
    )

    again = ws.http.post("/analyses", json={"kind": "pca", "components": 3, "selection": selection})
    assert again.status_code == 200 and again.json()["id"] == result["id"]  # from the cache
    polled = ws.http.get(f"/analyses/{result['id']}")
    assert polled.status_code == 200 and polled.json()["pca"] == result["pca"]

    distances = ws.analyse("distances", selection, poll=0.1, timeout=60)
    np.testing.assert_allclose(
        distances["distances"]["distances"], squareform(pdist(union)), rtol=1e-6, atol=1e-6
    )
    np.testing.assert_allclose(
        distances["distances"]["distance_from_origin"], np.linalg.norm(union, axis=1), rtol=1e-9
    )


def test_joint_analysis_checks_its_selection(ws: WeightspaceClient) -> None:
    rng = np.random.default_rng(1)
    ea = uploaded(ws, rng.normal(size=(1, 3, P)))
    other = uploaded(ws, rng.normal(size=(1, 3, 10)), size=10)

    def post(selection: list[dict[str, object]], kind: str = "pca") -> tuple[int, str]:
        response = ws.http.post("/analyses", json={"kind": kind, "selection": selection})
        body = response.json()
        return response.status_code, (body.get("errors") or [{}])[0].get("field", "")

    assert post([{"experiment": ea}, {"experiment": other}]) == (422, "selection.1.experiment")
    assert post([{"experiment": ea, "runs": [3]}]) == (422, "selection.0.runs")
    assert post([{"experiment": ea}, {"experiment": ea}]) == (422, "selection")
    at_limit = [0, 1, 2] * (MAX_SELECTED_EPOCHS // 3) + [0] * (MAX_SELECTED_EPOCHS % 3)
    distances = ws.analyse("distances", [{"experiment": ea, "epochs": at_limit}], timeout=60)
    assert [s["epoch"] for s in distances["snapshots"]] == [0, 1, 2]
    assert post([{"experiment": ea, "epochs": [*at_limit, 1]}]) == (422, "selection.0.epochs")
    assert post([{"experiment": str(uuid.uuid4())}])[0] == 404
    assert post([{"experiment": ea}], kind="barriers")[0] == 422
    assert ws.http.get(f"/analyses/{uuid.uuid4()}").status_code == 404


def test_unknown_query_parameters_are_refused_everywhere(ws: WeightspaceClient) -> None:
    eid = uploaded(ws, np.random.default_rng(2).normal(size=(1, 3, 10)), size=10)
    for path in (f"/experiments/{eid}/pca?component=3", f"/experiments?experiments={eid}"):
        response = ws.http.get(path)
        assert response.status_code == 422, path
        assert response.json()["errors"][0]["field"].startswith("query.")
    assert ws.http.get(f"/experiments/{eid}/pca?components=1").status_code == 200

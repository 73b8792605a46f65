"""Uploads as an attacker sends them, over real HTTP to a live API on PostgreSQL: malformed
headers, shapes, offsets and dtypes, odd tensor names, NaN and infinite values, odd headers and
paths, chunked bodies without a length. Then snapshots no analysis can use, stored behind the
API's back (as an older release or a damaged store could leave them), against every route.

Every answer is below 500, every error a problem document, and none quotes library internals.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi import FastAPI
from safetensors.numpy import save as np_save
from safetensors.torch import load as torch_load
from weightspace_app.infra.db import SnapshotRecord

from tests.hostile import INTERNALS, MALFORMED, NAMES, NON_FINITE, params
from tests.integration.serving import serving
from tests.integration.test_uploads import settings
from weightspace.snapshots import Snapshot, encode_snapshot, sha256_hex
from weightspace.vocabulary import FIGURE_NAMES
from weightspace_service.app import create_app

pytestmark = pytest.mark.integration

MAX_UPLOAD = 1 << 20
PROBLEM = "application/problem+json"


@dataclass
class Api:
    http: httpx.Client
    app: FastAPI

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request; fails the test on a 5xx, an error that is no problem document, or an
        answer that quotes library internals."""
        response = self.http.request(method, path, **kwargs)
        assert response.status_code < 500, f"{method} {path}: {response.text}"
        if response.status_code >= 400:
            assert response.headers["content-type"] == PROBLEM, response.text
            assert response.json()["status"] == response.status_code
        if "octet-stream" not in response.headers.get("content-type", ""):
            quoted = [text for text in INTERNALS if text in response.text]
            assert not quoted, f"{method} {path} quotes {quoted}: {response.text}"
        return response

    def upload_experiment(self, replicas: int = 1) -> str:
        return str(
            self.call(
                "POST", "/experiments", json={"source": "upload", "replicas": replicas}
            ).json()["id"]
        )

    def put(self, eid: str, run: int, epoch: int, body: Any, **kwargs: Any) -> httpx.Response:
        return self.call(
            "PUT", f"/experiments/{eid}/runs/{run}/snapshots/{epoch}", content=body, **kwargs
        )


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, migrated_postgres_url: str) -> Iterator[Api]:
    home = tmp_path_factory.mktemp("hostile")
    app = create_app(settings(home, migrated_postgres_url, max_upload_bytes=MAX_UPLOAD))
    with serving(app) as url, httpx.Client(base_url=url, timeout=60) as http:
        yield Api(http, app)


@pytest.fixture(scope="module")
def open_experiment(api: Api) -> str:
    return api.upload_experiment()


@pytest.mark.parametrize(("body", "words"), params(MALFORMED + NON_FINITE))
def test_hostile_bodies_answer_422_saying_what_is_wrong(
    api: Api, open_experiment: str, body: bytes, words: str
) -> None:
    response = api.put(open_experiment, 0, 0, body)
    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert error["field"] == "body" and words in error["message"], error


def test_a_snapshot_with_nan_names_the_tensor_and_counts_its_bad_values(api: Api) -> None:
    eid = api.upload_experiment()
    weights = np.ones((3, 4), np.float32)
    weights[0, 1], weights[2, 3] = np.nan, np.inf
    body = np_save({"layer.bias": np.zeros(4, np.float32), "layer.weight": weights})
    problem = api.put(eid, 0, 0, body).json()
    assert problem["status"] == 422
    assert problem["errors"] == [
        {"field": "body", "message": "tensor 'layer.weight' holds 2 NaN or infinite values (of 12)"}
    ]
    assert api.call("GET", f"/experiments/{eid}/runs/0/snapshots").json()["items"] == []


@pytest.mark.parametrize("name", NAMES, ids=range(len(NAMES)))
def test_any_tensor_name_is_stored_and_given_back(api: Api, name: str) -> None:
    eid = api.upload_experiment()
    tensors = {name: np.arange(3, dtype=np.float32), "other": np.ones(2, np.float32)}
    assert api.put(eid, 0, 0, np_save(tensors)).status_code == 201
    path = f"/experiments/{eid}/runs/0/snapshots/0"
    back = torch_load(api.call("GET", path, params={"format": "state_dict"}).content)
    assert sorted(back) == sorted(tensors)
    assert back[name].tolist() == [0.0, 1.0, 2.0]


@pytest.mark.parametrize(
    ("headers", "field"),
    [
        ({"X-Metrics": '{"loss": 1' + "0" * 400 + "}"}, "header.x-metrics"),
        ({"X-Metrics": '{"loss": 1' + "0" * 5000 + "}"}, "header.x-metrics"),
        ({"X-Metrics": '{"loss": NaN}'}, "header.x-metrics"),
        ({"X-Metrics": '{"loss": -Infinity}'}, "header.x-metrics"),
        ({"X-Metrics": '{"loss": {"nested": 1}}'}, "header.x-metrics"),
        ({"X-Metrics": '{"a b": 1}'}, "header.x-metrics"),
        ({"X-Metrics": "[" * 4000}, "header.x-metrics"),
        ({"X-Metrics": "{" + "x" * 9000 + "}"}, "header.x-metrics"),
        ({"X-Checksum-Sha256": "g" * 64}, "header.x-checksum-sha256"),
        ({"Content-Digest": "sha-256=:AAAA:"}, "header.content-digest"),
    ],
    ids=[
        "int-past-float64",
        "int-past-json",
        "nan",
        "-inf",
        "nested",
        "name",
        "deep",
        "long",
        "checksum-not-hex",
        "digest-short",
    ],
)
def test_hostile_headers_answer_422_naming_the_header(
    api: Api, open_experiment: str, headers: dict[str, str], field: str
) -> None:
    body = np_save({"w": np.ones(2, np.float32)})
    response = api.put(open_experiment, 0, 0, body, headers=headers)
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == field


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/runs/-1/snapshots/0", 422),
        ("/runs/1/snapshots/0", 422),
        ("/runs/2147483648/snapshots/0", 422),
        ("/runs/0/snapshots/2147483648", 422),
        ("/runs/0/snapshots/x", 422),
        ("/runs/0/snapshots/0.5", 422),
    ],
)
def test_hostile_paths_answer_4xx(api: Api, open_experiment: str, path: str, status: int) -> None:
    body = np_save({"w": np.ones(2, np.float32)})
    response = api.call("PUT", f"/experiments/{open_experiment}{path}", content=body)
    assert response.status_code == status
    stranger = api.call("PUT", f"/experiments/{uuid.uuid4()}/runs/0/snapshots/0", content=body)
    assert stranger.status_code == 404
    assert api.call("PUT", "/experiments/not-a-uuid/runs/0/snapshots/0").status_code == 422


def test_chunked_bodies_without_a_length(api: Api) -> None:
    def chunks(data: bytes, size: int = 4096) -> Iterator[bytes]:
        yield from (data[i : i + size] for i in range(0, len(data), size))

    eid = api.upload_experiment()
    good = np_save({"w": np.arange(50_000, dtype=np.float32)})
    response = api.put(eid, 0, 0, chunks(good))
    assert response.status_code == 201 and response.json()["parameters"] == 50_000
    for case, body, words in MALFORMED + NON_FINITE:
        response = api.put(eid, 0, 1, chunks(body, 7))
        assert response.status_code == 422 and words in response.text, case
    oversize = chunks(np_save({"w": np.zeros(MAX_UPLOAD // 4 + 1, np.float32)}))
    assert api.put(eid, 0, 2, oversize).status_code == 413
    assert api.put(eid, 0, 3, iter([b""])).status_code == 422


# --------------------------------------------------------------------------- stored snapshots

RUNS, EPOCHS, BAD = 2, 3, (1, 1)  # the bad snapshot: run 1 at epoch 1


def _walk(dtype: type[np.floating[Any]], bad: float | None = None) -> list[list[np.ndarray]]:
    rng = np.random.default_rng(0)
    walk = [[rng.normal(size=6).astype(dtype) for _ in range(EPOCHS)] for _ in range(RUNS)]
    if bad is not None:
        walk[BAD[0]][BAD[1]][:] = bad
    return walk


def _uploaded(api: Api, walk: list[list[np.ndarray]]) -> str:
    eid = api.upload_experiment(RUNS)
    for run, vectors in enumerate(walk):
        for epoch, vector in enumerate(vectors):
            metrics = {"X-Metrics": json.dumps({"train_loss": 1.0 / (epoch + 1)})}
            assert api.put(eid, run, epoch, np_save({"w": vector}), headers=metrics).is_success
    assert api.call("POST", f"/experiments/{eid}/complete").json()["status"] == "succeeded"
    return eid


def _with_nan_stored_behind_the_api(api: Api) -> str:
    """An experiment whose snapshot ``BAD`` holds NaN and infinities, written to the store and
    recorded as an older release would have (the upload check refuses such a body now)."""
    eid = _uploaded(api, _walk(np.float32))
    params = np.ones(6, np.float32)
    params[[0, 3]] = np.nan, -np.inf
    data = encode_snapshot(Snapshot(*BAD, params, layout=(("w", (6,)),)), eid)
    with api.app.state.sessions() as session:
        record = session.get_one(SnapshotRecord, (uuid.UUID(eid), *BAD))
        api.app.state.store.put(record.key, data)
        record.sha256, record.size = sha256_hex(data), len(data)
        session.commit()
    return eid


def _with_huge_values(api: Api) -> str:
    """Finite float64 values whose squares overflow: accepted at upload, unusable in analyses."""
    return _uploaded(api, _walk(np.float64, bad=1e200))


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(_with_nan_stored_behind_the_api, id="nan-stored-behind-the-api"),
        pytest.param(_with_huge_values, id="huge-finite-values"),
    ],
)
def test_every_route_answers_a_snapshot_no_analysis_can_use(api: Api, make: Any) -> None:
    eid = make(api)
    healthy = _uploaded(api, _walk(np.float32))
    base = f"/experiments/{eid}"
    named = f"the snapshot of run {BAD[0]} at epoch {BAD[1]}"

    def refused(method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = api.call(method, path, **kwargs)
        assert response.status_code == 409, f"{method} {path}: {response.text}"
        return dict(response.json())

    for path in (
        "/pca",
        "/trajectory",
        "/distances?epoch=1",
        *(f"/figures/{n}.svg" for n in FIGURE_NAMES),
    ):
        problem = refused("GET", base + path)
        assert problem["title"] == "Damaged snapshot" and named in problem["detail"], problem
    for kind in ("pca", "distances"):
        selection = [{"experiment": healthy}, {"experiment": eid}]
        problem = refused("POST", "/analyses", json={"kind": kind, "selection": selection})
        assert f"run {BAD[0]} at epoch {BAD[1]} of experiment {eid}" in problem["detail"]
    assert "model" in refused("GET", base + "/barriers")["detail"]  # none to evaluate them
    for path in ("/landscape", "/landscape.svg"):
        assert api.call("GET", base + path).status_code in (409, 422)

    # Selections that leave the snapshot out are answered, with finite numbers only.
    pca = api.call("GET", base + "/pca", params={"runs": 0}).json()
    assert len(pca["points"]) == EPOCHS and all(v > 0 for v in pca["explained_variance"])
    distances = api.call("GET", base + "/distances").json()  # the final epoch, from the starts
    assert distances["epoch"] == EPOCHS - 1 and None not in distances["distance_from_init"]
    # The bytes are served as stored; the experiment lists the snapshot as damaged.
    for path in ("", "/runs", f"/runs/{BAD[0]}/snapshots", f"/runs/{BAD[0]}/snapshots/{BAD[1]}"):
        api.call("GET", base + path).raise_for_status()
    state = f"{base}/runs/{BAD[0]}/snapshots/{BAD[1]}?format=state_dict"
    assert list(torch_load(api.call("GET", state).content)) == ["w"]
    assert "Damaged snapshots" in api.call("GET", f"/ui/experiments/{eid}").text
    [damaged] = api.call("GET", base).json()["damaged_snapshots"]
    assert (damaged["run"], damaged["epoch"]) == BAD
    assert "NaN or infinite" in damaged["reason"] or "too large" in damaged["reason"]


def test_trajectory_of_uploads_without_train_loss(api: Api) -> None:
    eid = api.upload_experiment()
    for epoch in range(3):
        api.put(eid, 0, epoch, np_save({"w": np.full(4, epoch, np.float32)}))
    points = api.call("GET", f"/experiments/{eid}/trajectory").json()["runs"][0]["points"]
    assert [p["loss_change_per_epoch"] for p in points] == [None, None, None]
    assert [p["distance_per_epoch"] for p in points] == [None, 2.0, 2.0]

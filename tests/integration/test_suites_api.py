"""Presets and suites over HTTP, in-process, on a real migrated PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from weightspace_app.infra.settings import Settings

from weightspace_service.app import create_app

pytestmark = pytest.mark.integration


@pytest.fixture
def client(tmp_path: Path, migrated_postgres_url: str) -> Iterator[TestClient]:
    settings = Settings(home=tmp_path, database_url=migrated_postgres_url)
    with TestClient(create_app(settings), follow_redirects=False) as test_client:
        yield test_client


def test_presets_describe_the_experiments(client: TestClient) -> None:
    presets = {p["name"]: p for p in client.get("/presets").json()["items"]}
    assert set(presets) == {"quick", "paper"}
    paper = presets["paper"]
    roles = [e["role"] for e in paper["experiments"]]
    assert roles == [
        "trajectory",
        "independent-inits",
        "shared-init",
        "shared-init-masks",
        "pretrained-clones",
    ]
    specs = {e["role"]: e["spec"] for e in paper["experiments"]}
    assert (
        specs["trajectory"]["model"] == {"kind": "paper-cnn"}
        and specs["trajectory"]["epochs"] == 200
    )
    assert (
        specs["independent-inits"]["snapshot_every"] == 10
        and specs["independent-inits"]["replicas"] == 5
    )
    assert (
        specs["shared-init"]["init"] == "shared"
        and specs["shared-init"]["data_order"] == "independent"
        and specs["shared-init"]["dropout_masks"] == "shared"
    )
    assert specs["shared-init-masks"]["dropout_masks"] == "independent"
    assert specs["pretrained-clones"]["pretrain_epochs"] == 10
    digits = client.get("/presets/quick", params={"dataset": "digits"}).json()
    assert {e["spec"]["dataset"]["name"] for e in digits["experiments"]} == {"digits"}
    assert client.get("/presets/huge").status_code == 422


def test_a_suite_submits_its_experiments_and_reports_when_done(client: TestClient) -> None:
    bad = client.post("/suites", json={"preset": "tiny"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "preset"
    response = client.post("/suites", json={"preset": "quick", "dataset": "digits"})
    assert response.status_code == 202
    suite = response.json()
    assert response.headers["location"] == f"/suites/{suite['id']}"
    assert suite["status"] == "queued" and suite["report"] == {
        "status": "pending",
        "error": None,
        "url": None,
        "files": [],
    }
    roles = [
        "trajectory",
        "independent-inits",
        "shared-init",
        "shared-init-masks",
        "pretrained-clones",
    ]
    assert suite["seeds"] == 3  # the quick preset's default: three replicates
    assert [(e["role"], e["replicate"]) for e in suite["experiments"]] == [
        (role, k) for k in range(3) for role in roles
    ]
    experiment = suite["experiments"][0]["experiment"]
    assert (
        experiment["suite_id"] == suite["id"]
        and experiment["links"]["suite"] == f"/suites/{suite['id']}"
    )
    assert client.get(f"/experiments/{experiment['id']}").json()["role"] == "trajectory"

    for path in ("report", "claims", "report/index.html"):
        pending = client.get(f"/suites/{suite['id']}/{path}")
        assert pending.status_code == 409 and "pending" in pending.json()["detail"]
    assert client.get(f"/suites/{suite['id']}/report/..%2F..%2Fetc").status_code in (404, 422)
    assert client.get(f"/suites/{suite['id']}/report/evil.exe").status_code == 422
    assert client.get(f"/suites/{uuid.uuid4()}").status_code == 404


def test_specs_whose_data_the_server_lacks_are_refused_at_submit(
    tmp_path: Path, migrated_postgres_url: str
) -> None:
    settings = Settings(
        home=tmp_path, database_url=migrated_postgres_url, data_dir=tmp_path / "no-data"
    )
    with TestClient(create_app(settings), follow_redirects=False) as client:
        before = client.get("/experiments").json()["items"]
        spec = {"dataset": {"name": "mnist"}, "model": {"kind": "mlp"}, "epochs": 1}
        missing = client.post("/experiments", json=spec)
        assert missing.status_code == 422, missing.text
        assert missing.json()["errors"][0]["field"] == "dataset.name"
        assert "WEIGHTSPACE_DATA_DIR" in missing.json()["detail"]
        spec["dataset"] = {"name": "digits", "train_size": 2000}
        too_big = client.post("/experiments", json=spec)
        assert too_big.status_code == 422
        assert too_big.json()["errors"][0]["field"] == "dataset.train_size"
        suite = client.post("/suites", json={"preset": "quick", "dataset": "mnist", "seeds": 2})
        assert suite.status_code == 422 and suite.json()["errors"][0]["field"] == "dataset"
        assert client.get("/experiments").json()["items"] == before  # nothing was created

"""The CLI's round trip on a live API (PostgreSQL): experiments named by id prefixes and names,
tags and notes (`PATCH`), `GET /suites`, and analyses across experiments as tables, CSV and SVG."""

from __future__ import annotations

import csv
import io
import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner
from weightspace_app.infra.migrate import upgrade

from tests.integration.serving import serving
from tests.integration.test_uploads import settings
from weightspace_client import ApiError, WeightspaceClient
from weightspace_client.cli import app as cli
from weightspace_service.app import create_app

pytestmark = pytest.mark.integration


@pytest.fixture
def ws(tmp_path: Path, fresh_postgres_url: str) -> Iterator[WeightspaceClient]:
    """An API on a database of the test's own: names and lists are the test's alone."""
    upgrade(fresh_postgres_url)
    app = create_app(settings(tmp_path, fresh_postgres_url))
    with serving(app) as url, WeightspaceClient(url, timeout=120) as client:
        yield client


def run_cli(ws: WeightspaceClient, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(cli, [*args, "--url", ws.base_url])
    assert result.exit_code == code, result.output
    return result.output


def uploaded(ws: WeightspaceClient, name: str, seed: int, runs: int = 2) -> str:
    """An uploaded experiment: ``runs`` runs of 3 snapshots of a 2-tensor state dict."""
    rng = np.random.default_rng(seed)
    experiment = ws.create_upload(name=name, replicas=runs)
    for run in range(runs):
        for epoch in range(3):
            state = {"w": rng.normal(size=(4, 3)).astype(np.float32), "b": np.zeros(4, np.float32)}
            ws.upload(experiment["id"], run, epoch, state)
    return ws.complete(experiment["id"])["id"]


def test_ids_by_prefix_or_name_tags_and_notes(ws: WeightspaceClient) -> None:
    alpha = uploaded(ws, "alpha", 0)
    first_beta, second_beta = uploaded(ws, "beta", 1), uploaded(ws, "beta", 2)

    status = json.loads(run_cli(ws, "status", "alpha", "--json"))
    assert status["id"] == alpha
    assert json.loads(run_cli(ws, "status", alpha[:8].upper(), "--json"))["id"] == alpha
    ambiguous = run_cli(ws, "status", "beta", code=1)
    assert "matches 2 experiments" in ambiguous
    assert first_beta in ambiguous and second_beta in ambiguous
    assert "no experiment has" in " ".join(run_cli(ws, "trajectory", "gamma", code=1).split())

    tagged = json.loads(
        run_cli(ws, "tag", "alpha", "baseline", "lr-0.1", "--note", "why", "--json")
    )
    assert tagged["tags"] == ["baseline", "lr-0.1"] and tagged["note"] == "why"
    ws.annotate(first_beta, tags=["baseline"])
    listed = json.loads(run_cli(ws, "list", "--tag", "baseline", "--json"))
    assert {e["id"] for e in listed} == {alpha, first_beta}
    kept = json.loads(run_cli(ws, "tag", alpha, "--remove", "baseline", "--json"))
    assert kept["tags"] == ["lr-0.1"] and kept["note"] == "why", "a PATCH keeps what it omits"
    assert ws.annotate(alpha, note="")["note"] is None
    assert "tags" in run_cli(ws, "list")
    shown = " ".join(run_cli(ws, "status", "alpha").split())
    assert "batch loss" in shown and "evaluated on the training set at the latest snapshot" in shown

    for body, field in (
        ({"tags": ["no spaces"]}, "tags.0"),
        ({"tags": ["x"] * 33}, "tags"),
        ({"colour": "red"}, "colour"),
        ({"note": 3}, "note"),
    ):
        answer = ws.http.patch(f"/experiments/{alpha}", json=body)
        assert answer.status_code == 422, answer.text
        assert answer.json()["errors"][0]["field"] == field, answer.json()
    assert ws.http.get("/experiments", params={"tag": "a b"}).status_code == 422
    missing = ws.http.patch("/experiments/00000000-0000-0000-0000-000000000000", json={})
    assert missing.status_code == 404


def test_suites_are_listed_in_pages(ws: WeightspaceClient) -> None:
    assert ws.http.get("/suites").json() == {"items": [], "next_cursor": None}
    made = [ws.submit_suite("quick", dataset="digits", seeds=1)["id"] for _ in range(2)]
    first = ws.http.get("/suites", params={"limit": 1}).json()
    assert [s["id"] for s in first["items"]] == [made[1]] and first["next_cursor"]
    second = ws.http.get("/suites", params={"limit": 1, "cursor": first["next_cursor"]}).json()
    assert [s["id"] for s in second["items"]] == [made[0]]
    assert [s["id"] for s in ws.list_suites(limit=1)] == made[::-1]
    bad = ws.http.get("/suites", params={"cursor": "nonsense"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"].endswith("cursor")
    listed = json.loads(run_cli(ws, "suites", "list", "--json"))
    assert [s["id"] for s in listed] == made[::-1]
    assert "quick" in run_cli(ws, "suites", "list")
    cancelled = json.loads(run_cli(ws, "cancel", "--suite", made[0][:8], "--json"))
    assert cancelled["id"] == made[0]


def _rows(text: str) -> list[dict[str, Any]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_analyse_across_experiments_as_tables_csv_and_svg(
    ws: WeightspaceClient, tmp_path: Path
) -> None:
    alpha, beta = uploaded(ws, "alpha", 0), uploaded(ws, "beta", 1, runs=1)

    table = _rows(run_cli(ws, "analyse", "pca", "alpha", beta[:6], "--runs", "0", "--csv"))
    assert [(r["name"], r["run"], r["epoch"]) for r in table] == [
        ("alpha", "0", "0"),
        ("alpha", "0", "1"),
        ("alpha", "0", "2"),
        ("beta", "0", "0"),
        ("beta", "0", "1"),
        ("beta", "0", "2"),
    ]
    assert {r["experiment"] for r in table} == {alpha, beta} and "pc2" in table[0]
    joint = ws.analyse("pca", [{"experiment": alpha, "runs": [0]}, {"experiment": beta}])
    coordinates = [[float(r["pc1"]), float(r["pc2"])] for r in table]
    np.testing.assert_array_equal(coordinates, joint["pca"]["coordinates"])  # type: ignore[index]

    figure = tmp_path / "pca.svg"
    shown = run_cli(ws, "analyse", "pca", "alpha", "beta", "--epochs", "2", "--svg", str(figure))
    assert "alpha r1 e2" in shown and "beta r0 e2" in shown
    assert figure.read_bytes().lstrip().startswith(b"<?xml") and b"<svg" in figure.read_bytes()

    distances = ws.analyse("distances", [{"experiment": alpha}, {"experiment": beta}])
    pairs = _rows(ws.analysis_csv(distances["id"]))
    assert len(pairs) == 9 * 9 and pairs[1]["name_a"] == "alpha" and pairs[-1]["name_b"] == "beta"
    assert float(pairs[1]["distance"]) == distances["distances"]["distances"][0][1]  # type: ignore[index]
    assert ws.analysis_svg(distances["id"]).lstrip().startswith(b"<?xml")
    assert "alpha r1 e2" in run_cli(ws, "analyse", "distances", "alpha", "beta")

    response = ws.http.get(f"/analyses/{distances['id']}/table.csv")
    assert response.headers["content-type"].startswith("text/csv")
    for path in (
        "/analyses/00000000-0000-0000-0000-000000000000/figure.svg",
        "/analyses/x/table.csv",
    ):
        assert ws.http.get(path).status_code in (404, 422)
    single = ws.analyse("distances", [{"experiment": beta, "epochs": [2]}])
    with pytest.raises(ApiError) as refused:
        ws.analysis_svg(single["id"])
    assert refused.value.status == 409


def test_the_web_pages_filter_by_tag_and_compare_experiments(ws: WeightspaceClient) -> None:
    alpha, beta = uploaded(ws, "alpha", 0), uploaded(ws, "beta", 1, runs=1)
    ws.annotate(alpha, tags=["baseline"])
    listing = ws.http.get("/ui").text
    assert f'name="experiment" value="{alpha}"' in listing and 'action="/ui/compare"' in listing
    assert '<a href="/ui?tag=baseline">baseline</a>' in listing
    tagged = ws.http.get("/ui", params={"tag": "baseline"}).text
    assert f"/ui/experiments/{alpha}" in tagged and f"/ui/experiments/{beta}" not in tagged
    assert ws.http.get("/ui", params={"tag": "no spaces"}).status_code == 422

    page = ws.http.get("/ui/compare", params={"experiment": [alpha, beta]})
    assert page.status_code == 200, page.text
    figures = re.findall(r'<img src="(/analyses/[0-9a-f-]+/figure\.svg)"', page.text)
    assert len(figures) == 2 and ">alpha</a>" in page.text and ">beta</a>" in page.text
    for url in figures:
        svg = ws.http.get(url)
        assert svg.status_code == 200 and svg.headers["content-type"] == "image/svg+xml"
    table = _rows(ws.http.get(figures[0].replace("figure.svg", "table.csv")).text)
    assert {r["name"] for r in table} == {"alpha", "beta"}
    assert "Landscapes" not in page.text  # uploads without a model have no planes

    other = ws.create_upload(name="other-layout", replicas=1)["id"]
    ws.upload(other, 0, 0, {"v": np.zeros(5, np.float32)})
    ws.complete(other)
    refused = ws.http.get("/ui/compare", params={"experiment": [alpha, other]}).text
    assert "cannot be analysed together" in refused and "layout" in refused
    assert "Choose experiments" in ws.http.get("/ui/compare").text
    assert ws.http.get("/ui/compare", params={"experiment": "x"}).status_code == 422
    missing = ws.http.get("/ui/compare", params={"experiment": str(uuid.uuid4())})
    assert missing.status_code == 404

"""The async client against a live API on PostgreSQL: the same operations and answers as the
sync client's; CSV answers equal to the JSON ones; ``wait`` raising with the server's cause."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner
from weightspace_app.infra.settings import Settings

from tests.integration.serving import serving
from weightspace_client import AsyncWeightspaceClient, ExperimentFailed, WeightspaceClient
from weightspace_client.cli import app as cli
from weightspace_service.app import create_app

pytestmark = pytest.mark.integration

RUNS, EPOCHS = 2, 3
TRAIN_SPEC = {
    "dataset": {"name": "digits", "train_size": 100, "test_size": 50},
    "model": {"kind": "mlp", "hidden": [4]},
    "epochs": 2,
}


@pytest.fixture
def url(tmp_path: Path, migrated_postgres_url: str) -> Iterator[str]:
    """A live API; its broker is a SQLite file no worker reads (training stays queued)."""
    settings = Settings(
        home=tmp_path,
        database_url=migrated_postgres_url,
        broker_url=f"sqla+sqlite:///{tmp_path / 'broker.db'}",
        storage_url=f"file://{tmp_path / 'snapshots'}",
    )
    with serving(create_app(settings)) as served:
        yield served


def _state_dict(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {
        "w": rng.normal(size=(6, 5)).astype(np.float32),
        "b": rng.normal(size=5).astype(np.float32),
    }


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


async def _upload_and_analyse(url: str, tmp_path: Path) -> dict[str, Any]:
    rng = np.random.default_rng(7)
    async with AsyncWeightspaceClient(url) as client:
        experiment = await client.create_upload(name="async", replicas=RUNS)
        for run in range(RUNS):
            for epoch in range(EPOCHS):
                await client.upload(experiment["id"], run, epoch, _state_dict(rng))
        completed = await client.complete(experiment["id"])
        listed = [e["id"] async for e in client.list_experiments(limit=1)]
        snapshots = [s async for s in client.list_snapshots(experiment["id"], 1)]
        saved = await client.download_snapshot(experiment["id"], 1, 2, tmp_path / "s.safetensors")
        return {
            "id": experiment["id"],
            "completed": completed,
            "listed": listed,
            "snapshots": snapshots,
            "saved": saved,
            "final": await client.wait(experiment["id"], poll=0.1, timeout=30),
            "pca": await client.pca(experiment["id"], components=3),
            "pca_csv": await client.pca_csv(experiment["id"], components=3),
            "distances": await client.distances(experiment["id"]),
            "distances_csv": await client.distances_csv(experiment["id"]),
            "runs": await client.list_runs(experiment["id"]),
        }


def test_the_async_client_uploads_lists_downloads_and_analyses(url: str, tmp_path: Path) -> None:
    got = asyncio.run(_upload_and_analyse(url, tmp_path))
    assert got["completed"]["status"] == got["final"]["status"] == "succeeded"
    assert got["id"] in got["listed"]  # one item per page: the iterator followed the cursor
    assert [s["epoch"] for s in got["snapshots"]] == list(range(EPOCHS))
    assert got["saved"].stat().st_size == got["snapshots"][2]["size"]
    assert [r["run"] for r in got["runs"]] == list(range(RUNS))

    with WeightspaceClient(url) as sync:  # the same operations, the same answers
        assert sync.pca(got["id"], components=3) == got["pca"]
        assert sync.distances(got["id"]) == got["distances"]
        assert sync.pca_csv(got["id"], components=3) == got["pca_csv"]

    # CSV: one row per point, the same numbers as the JSON answer, exactly.
    rows = _rows(got["pca_csv"])
    assert list(rows[0]) == ["run", "epoch", "pc1", "pc2", "pc3"]
    assert len(rows) == len(got["pca"]["points"]) == RUNS * EPOCHS
    for row, point in zip(rows, got["pca"]["points"], strict=True):
        assert (int(row["run"]), int(row["epoch"])) == (point["run"], point["epoch"])
        assert [float(row[f"pc{i}"]) for i in (1, 2, 3)] == point["coordinates"]

    distances = got["distances"]
    rows = _rows(got["distances_csv"])
    assert len(rows) == RUNS * RUNS
    for row in rows:
        i = distances["runs"].index(int(row["run_a"]))
        j = distances["runs"].index(int(row["run_b"]))
        assert int(row["epoch"]) == distances["epoch"]
        assert float(row["distance"]) == distances["distances"][i][j]
        assert float(row["cosine_similarity"]) == distances["cosine_similarity"][i][j]


def test_wait_raises_with_the_servers_cause_and_the_cli_exits_non_zero(url: str) -> None:
    with WeightspaceClient(url) as sync:
        experiment = sync.submit(TRAIN_SPEC)
        sync.cancel(experiment["id"])
        with pytest.raises(ExperimentFailed) as raised:
            sync.wait(experiment["id"], poll=0.1, timeout=30)
        assert sync.wait(experiment["id"], check=False)["status"] == "cancelled"
    failure = raised.value
    assert failure.status == "cancelled" and failure.experiment["id"] == experiment["id"]
    assert failure.cause == failure.experiment["error"]
    assert f"experiment {experiment['id']} cancelled" in str(failure)

    async def wait_async() -> ExperimentFailed:
        async with AsyncWeightspaceClient(url) as client:
            try:
                await client.wait(experiment["id"], poll=0.1, timeout=30)
            except ExperimentFailed as error:
                return error
        raise AssertionError("wait returned for a cancelled experiment")

    assert asyncio.run(wait_async()).status == "cancelled"

    result = CliRunner().invoke(cli, ["wait", experiment["id"], "--url", url, "--json"])
    assert result.exit_code == 1, result.output
    assert "cancelled" in result.output

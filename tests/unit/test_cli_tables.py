"""The CLI's tables fit an 80-column terminal, long names and many columns included, and no
figure is cut to an ellipsis (wide figures wrap onto a second line instead)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console, RenderableType

CLIENT_DIR = Path(__file__).resolve().parents[2] / "client"
if importlib.util.find_spec("weightspace_client") is None:  # not pip-installed: use the source
    sys.path.insert(0, str(CLIENT_DIR))

from weightspace_client.cli.analysis import _distance_matrix, _points_table  # noqa: E402
from weightspace_client.cli.experiments import (  # noqa: E402
    _describe,
    _experiments_table,
    _runs_table,
)
from weightspace_client.cli.suites import _claims_table  # noqa: E402

WIDTH = 80
LONG = "a-rather-long-experiment-name-that-someone-typed-" * 3
EXPERIMENT: dict[str, Any] = {
    "id": "0b7e5f3c-3f4e-4b8e-9a51-6a3cc1f1d2a7",
    "name": LONG,
    "status": "cancelled",
    "queue": "upload",
    "created_at": "2026-11-28T21:04:47.123456+00:00",
    "error": LONG,
}
RUN = {
    "run": 63,
    "status": "succeeded",
    "epoch": 10_000,
    "final_epoch": 10_000,
    "train_loss": 0.123456789,
    "metrics": {"test_accuracy": 0.98765},
}
TEST = {
    "name": "loss_change_ratio_of_a_long_statistic",
    "value": 0.123456,
    "interval": [0.1, 0.2],
    "null": {"band": [0.01, 0.02]},
    "direction": "above",
    "passed": 2,
    "seeds": 3,
}
CLAIM = {
    "id": "2a",
    "statement": LONG * 2,
    "verdict": "not supported",
    "stability": {"agree": 2, "seeds": 3},
    "tests": [TEST, TEST],
    "note": LONG,
}


def _lines(renderable: RenderableType) -> list[str]:
    console = Console(width=WIDTH, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(renderable)
    return console.export_text().splitlines()


TABLES = {
    "list": lambda: _experiments_table([EXPERIMENT, {**EXPERIMENT, "name": None}]),
    "status": lambda: _describe(EXPERIMENT),  # type: ignore[arg-type]
    "runs": lambda: _runs_table([RUN, RUN]),  # type: ignore[list-item]
    "claims": lambda: _claims_table([CLAIM, {**CLAIM, "verdict": "not measured", "tests": []}]),  # type: ignore[list-item]
    "pca points": lambda: _points_table(
        {  # type: ignore[typeddict-item]
            "explained_variance_ratio": [0.1] * 10,
            "points": [{"run": 63, "epoch": 10_000, "coordinates": [-12345.6789] * 10}],
        }
    ),
    "distances": lambda: _distance_matrix(
        {"runs": list(range(16)), "epoch": 3, "distances": [[1234.5678] * 16] * 16}  # type: ignore[typeddict-item]
    ),
}


@pytest.mark.parametrize("name", sorted(TABLES))
def test_tables_fit_80_columns(name: str) -> None:
    lines = _lines(TABLES[name]())
    too_wide = [line for line in lines if len(line) > WIDTH]
    assert not too_wide, f"{name}: {len(too_wide)} lines over {WIDTH} columns:\n" + "\n".join(
        too_wide
    )
    # Ids are what people copy from the list: never cut or folded.
    if name == "list":
        assert sum(EXPERIMENT["id"] in line for line in lines) == 2


@pytest.mark.parametrize("name", ["pca points", "distances"])
def test_figures_are_wrapped_not_cut(name: str) -> None:
    assert "…" not in "\n".join(_lines(TABLES[name]()))


def test_a_matrix_of_twelve_runs_shows_every_figure_on_one_line() -> None:
    matrix = {"runs": list(range(12)), "epoch": 3, "distances": [[1234.5678] * 12] * 12}
    rows = [line for line in _lines(_distance_matrix(matrix)) if "1235" in line]  # type: ignore[arg-type]
    assert len(rows) == 12 and all(row.count("1235") == 12 for row in rows)

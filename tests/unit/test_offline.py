"""Reproducing a preset in-process (for machines without the service's stack)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from weightspace.analysis import ArrayVector, gram
from weightspace.offline import _analysable, main


def test_offline_reproduction_writes_the_report(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "report"
    main(
        [
            "--preset",
            "quick",
            "--dataset",
            "digits",
            "--roles",
            "trajectory",
            "--device",
            "cpu",
            "--out",
            str(out),
        ]
    )
    claims = json.loads((out / "claims.json").read_text())["claims"]
    verdicts = {c["id"]: c["verdict"] for c in claims}
    assert verdicts["4"] == verdicts["5"] == "not measured"  # experiments 2-4 were not run
    assert all(verdicts[c] != "not measured" for c in ("1", "2a", "2b", "3"))
    document = json.loads((out / "claims.json").read_text())
    assert [s["seed"] for s in document["seeds"]] == [0]
    # Each measured claim has its null or control beside it; 2a's control (the lines between
    # experiment 2's solutions) needs experiment 2, so alone it is judged on its tolerance.
    measured = [c for c in claims if c["verdict"] != "not measured"]
    assert all("null" in c or "control" in c for c in measured if c["id"] != "2a")
    assert "tolerance" in next(c for c in claims if c["id"] == "2a")
    # Every test states its effect size and the least effect it needs; claim 1 has its late
    # chord scanned, 2b its random-walk comparison beside the straight line.
    assert all("minimum" in t["effect"] for c in measured for t in c["tests"])
    first = document["seeds"][0]["claims"]
    assert "train_barrier" in first[0]["measured"]["late_chord"]
    assert first[2]["beside"][0]["name"] == "straightness_vs_random_walk"
    assert (out / "fig1-trajectory-pca.svg").is_file() and (out / "line-loss.png").is_file()
    assert len(list((out / "snapshots").rglob("*.safetensors"))) == 21
    assert "experiments run: trajectory" in capsys.readouterr().out


def test_a_diverged_snapshot_is_named_instead_of_analysed() -> None:
    """The offline runner's analyses refuse what the service's do (409 "Damaged snapshot"): a
    snapshot whose values are not finite, or whose squares overflow float64."""
    kept = [(run, epoch, {}, {}, f"key{run}{epoch}") for run in (0, 1) for epoch in (0, 1)]
    fine = [np.full(5, float(i)) for i in range(4)]
    matrix = gram([ArrayVector(v) for v in fine])
    assert _analysable(matrix, kept, "clones") is matrix
    for bad in (np.nan, np.inf, 1e200):
        vectors = [*fine[:2], np.full(5, bad), fine[3]]
        with np.errstate(over="ignore", invalid="ignore"):
            matrix = gram([ArrayVector(v) for v in vectors])
        with pytest.raises(ValueError, match="clones: the snapshot of run 1 at epoch 0"):
            _analysable(matrix, kept, "clones")

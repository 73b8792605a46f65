"""The GPU machine's script, dry-run on the CPU: the paper preset, tiny, on digits.

``scripts/device-paper.sh`` is what the lent GPU machine runs (docs/results/README.md); it must
work the first time one is at hand. Here it runs the same way with two epochs on scikit-learn's
digits (``WEIGHTSPACE_PAPER_EPOCHS``, ``WEIGHTSPACE_PAPER_DATASET``) and must leave in ``$OUT``
the report archive, claims, timings, environment and log, and nothing more than 8 files.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
# The script's own budget (480 s) is the GPU machine's; a loaded 2-core CPU needs 5-8 minutes
# for the tiny run with the report's analysis, so the dry run gets a larger one.
BUDGET_S = 1500
TIMEOUT_S = BUDGET_S + 120


def test_device_script_dry_run_on_the_cpu(tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = {
        **os.environ,
        "OUT": str(out),
        "WEIGHTSPACE_PAPER_EPOCHS": "2",
        "WEIGHTSPACE_PAPER_DATASET": "digits",
        "WEIGHTSPACE_PAPER_BUDGET_S": str(BUDGET_S),
        "WEIGHTSPACE_PAPER_WORK": str(tmp_path / "work"),
        # This interpreter (the venv's, with torch): `python` on PATH may be another one.
        "PYTHON": os.environ.get("PYTHON", sys.executable),
    }
    done = subprocess.run(
        ["bash", "scripts/device-paper.sh"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    files = sorted(p.name for p in out.iterdir())
    assert files == [
        "claims.json",
        "device-paper.log",
        "environment.json",
        "report.tar.gz",
        "timings.json",
    ]
    timings = json.loads((out / "timings.json").read_text())
    assert timings["status"] == 0 and timings["epochs"] == 2
    assert timings["plan"] == {"epochs": 2, "calibrated": False}
    environment = json.loads((out / "environment.json").read_text())
    assert environment["threads"] == "1" and environment["device"].startswith("cpu")
    claims = json.loads((out / "claims.json").read_text())
    assert claims  # the report's verdicts, whatever they are
    with tarfile.open(out / "report.tar.gz") as archive:
        names = archive.getnames()
    assert "report/index.html" in names and "report/claims.json" in names
    assert not any("snapshots" in name for name in names)
    # The suite really ran at the override: the clones' spec in the report says 2 epochs in all.
    log = (out / "device-paper.log").read_text()
    assert "training the paper preset on digits: 2 epochs" in log
    assert "offline runner exited with 0" in log

"""End to end, embedded: ``weightspace up`` (API + a real Celery worker, no external service)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.scenario import free_port, run_scenario, stop, wait_healthy

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def weightspace_command() -> str:
    local = Path(sys.executable).with_name("weightspace")
    found = str(local) if local.exists() else shutil.which("weightspace")
    assert found, "the `weightspace` command is not installed (pip install -e ./client)"
    return found


def test_weightspace_up_trains_and_answers(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "up.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [weightspace_command(), "up", "--port", str(port), "--home", str(tmp_path / "home")],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_healthy(url, process, log)
        run_scenario(url, tmp_path)
        assert (tmp_path / "home" / "weightspace.db").is_file()
        assert any((tmp_path / "home" / "snapshots").rglob("*.safetensors"))
    finally:
        stop(process)
    assert process.returncode == 0, log.read_text()[-4000:]

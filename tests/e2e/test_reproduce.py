"""End to end: ``weightspace reproduce --embedded`` reproduces the paper with no server running.

One command starts the API and a worker under a fresh home, trains the ``quick`` preset's four
experiments on scikit-learn's digits, waits for the report, saves it, prints the claims and
stops both processes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from weightspace.report import FIGURE_FORMATS, FIGURE_NAMES

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
# Minutes on an idle CPU; generous for a loaded 2-core machine.
TIMEOUT_S = 1800
STOP_GRACE_S = 60
REPORT_URL = re.compile(r"http://127\.0\.0\.1:(\d+)/suites/[0-9a-f-]{36}/report\b")
VERDICTS = {"supported", "not supported", "not measured"}


def _weightspace_command() -> str:
    local = Path(sys.executable).with_name("weightspace")
    found = str(local) if local.exists() else shutil.which("weightspace")
    assert found, "the `weightspace` command is not installed (pip install -e ./client)"
    return found


def _run(argv: list[str], log: Path) -> int:
    """Run ``argv`` to its end; past the timeout, SIGTERM it (it stops its own children)."""
    # Settings from the environment (a database or broker URL, say) would point the embedded
    # service away from its fresh home.
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEIGHTSPACE_")}
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        try:
            return process.wait(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            raise AssertionError(
                f"`weightspace reproduce` ran past {TIMEOUT_S} s:\n{log.read_text()[-6000:]}"
            ) from None


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_reproduce_embedded_quick_preset_on_digits(tmp_path: Path) -> None:
    home, out, log = tmp_path / "home", tmp_path / "report", tmp_path / "reproduce.log"
    argv = [
        _weightspace_command(), "reproduce", "--embedded",
        "--preset", "quick", "--dataset", "digits",
        "--home", str(home), "--out", str(out), "--seeds", "2",
    ]  # fmt: skip
    code = _run(argv, log)
    output = log.read_text()
    assert code == 0, output[-6000:]

    assert (out / "index.html").is_file()
    page = (out / "index.html").read_text()
    for name in FIGURE_NAMES:
        for fmt in FIGURE_FORMATS:
            figure = out / f"{name}.{fmt}"
            assert figure.is_file() and figure.stat().st_size > 0, f"{figure.name} is missing"
            assert f'"{name}.{fmt}"' in page, f"index.html does not link {figure.name}"
        assert (out / f"{name}.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
        assert b"<svg" in (out / f"{name}.svg").read_bytes()[:2000]
    assert not list(out.glob(".*.part")), "a temporary download file was left behind"

    claims = json.loads((out / "claims.json").read_text())["claims"]
    assert [claim["id"] for claim in claims] == ["1", "2a", "2b", "3", "4", "5"]
    assert all(claim["stability"]["seeds"] == 2 for claim in claims)
    document = json.loads((out / "claims.json").read_text())
    assert [seed["seed"] for seed in document["seeds"]] == [0, 1]
    # Each measured claim stands beside its reference (a null, a control or, for "roughly", a
    # tolerance), and every test that decides it carries its effect size and least effect.
    measured = [claim for claim in claims if claim["verdict"] != "not measured"]
    assert measured, claims
    for claim in measured:
        assert claim.get("null") or claim.get("control") or claim.get("tolerance"), claim
        assert claim["interval"] is not None, claim
        assert all(test["effect"]["minimum"] is not None for test in claim["tests"]), claim
    for claim in claims:
        assert claim["verdict"] in VERDICTS, claim
        # The printed claims table shows each verdict (the statement may wrap).
        assert claim["verdict"] in output

    found = REPORT_URL.search(output)
    assert found, f"no report URL in the output:\n{output[-3000:]}"
    assert str((out / "index.html").resolve()) in output
    # The embedded API and worker are gone: the port no longer answers.
    assert not _listening(int(found.group(1)))
    assert (home / "weightspace.db").is_file()
    assert (home / "logs" / "worker.log").is_file()

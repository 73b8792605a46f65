"""The report as a browser sees it: served over HTTP, every figure loads; a screenshot is kept.

Needs Debian's ``chromium`` (``apt-get install -y chromium``; ``scripts/test.sh`` installs it).
The screenshot lands in ``artifacts/report-screenshot.png`` at the repository root.
"""

from __future__ import annotations

import contextlib
import functools
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.reproduction import build_reproduction
from weightspace.report import FIGURE_NAMES, render_report, write_report

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = REPO_ROOT / "artifacts" / "report-screenshot.png"
WINDOW = (1280, 6000)
CHROMIUM_TIMEOUT_S = 120


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def _serve(directory: Path) -> Iterator[str]:
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(
        "headless Chromium not found on PATH: install Debian's package with "
        "`apt-get update && apt-get install -y chromium` (scripts/test.sh does)",
        pytrace=False,
    )


def _run_chromium(chromium: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=10000",
        *args,
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT_S, check=False
    )
    assert result.returncode == 0, f"{' '.join(command)}\n{result.stderr[-3000:]}"
    return result


def test_every_figure_loads_in_chromium(tmp_path: Path) -> None:
    chromium = _chromium()
    reproduction = build_reproduction()
    files = render_report(reproduction.core)
    write_report(files, tmp_path / "report")
    with _serve(tmp_path / "report") as base:
        url = base + "index.html"
        dom = _run_chromium(chromium, tmp_path / "profile", "--dump-dom", url).stdout
        count = len(FIGURE_NAMES)
        assert f'data-images="ok {count}/{count}"' in dom, dom[-2000:]

        shot = tmp_path / "screenshot.png"
        _run_chromium(
            chromium,
            tmp_path / "profile",
            f"--screenshot={shot}",
            f"--window-size={WINDOW[0]},{WINDOW[1]}",
            url,
        )
    SCREENSHOT.parent.mkdir(exist_ok=True)
    shutil.copyfile(shot, SCREENSHOT)
    with Image.open(SCREENSHOT) as image:
        assert image.size == WINDOW
        pixels = np.asarray(image.convert("L"), dtype=float)
    # A page that drew: mostly white, but a good share of text, tables and plots.
    ink = (pixels < 200).mean()
    assert 0.01 < ink < 0.6, ink
    assert pixels.std() > 20

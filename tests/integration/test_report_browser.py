"""The report as a browser sees it: served over HTTP, every figure loads; a screenshot is kept.

Needs Debian's ``chromium`` (``apt-get install -y chromium``; ``scripts/test.sh`` installs it).
The screenshot lands in ``artifacts/report-screenshot.png`` at the repository root.
"""

from __future__ import annotations

import contextlib
import functools
import shutil
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.integration.browser import chromium, run_chromium
from tests.reproduction import build_reproduction
from weightspace.report import FIGURE_NAMES, render_report, write_report

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = REPO_ROOT / "artifacts" / "report-screenshot.png"
WINDOW = (1280, 6000)


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


def test_every_figure_loads_in_chromium(tmp_path: Path) -> None:
    browser = chromium()
    reproduction = build_reproduction()
    files = render_report(reproduction.core)
    write_report(files, tmp_path / "report")
    with _serve(tmp_path / "report") as base:
        url = base + "index.html"
        dom = run_chromium(browser, tmp_path / "profile", "--dump-dom", url).stdout
        count = len(FIGURE_NAMES)
        assert f'data-images="ok {count}/{count}"' in dom, dom[-2000:]

        shot = tmp_path / "screenshot.png"
        run_chromium(
            browser,
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

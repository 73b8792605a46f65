"""Debian's headless Chromium driven from tests: find it, run it, read what it logged.

Needs ``chromium`` (``apt-get install -y chromium``; ``scripts/setup.sh`` installs it).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM_TIMEOUT_S = 120
# Every host name resolves to nothing except loopback: a page that needs the network fails.
OFFLINE = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"
# What Chromium logs (with --enable-logging=stderr) for a console message at error level, and
# for a resource that did not load.
_CONSOLE_ERROR = re.compile(r'ERROR:CONSOLE|:CONSOLE\(\d+\)\] "(?:Uncaught|Failed to load)')


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(
        "headless Chromium not found on PATH: install Debian's package with "
        "`apt-get update && apt-get install -y chromium` (scripts/test.sh does)",
        pytrace=False,
    )


def run_chromium(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [
        browser,
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


def console_errors(stderr: str) -> list[str]:
    """The console errors and failed loads in Chromium's log (run with --enable-logging=stderr)."""
    return [line for line in stderr.splitlines() if _CONSOLE_ERROR.search(line)]


def dump_dom(browser: str, profile: Path, url: str) -> tuple[str, list[str]]:
    """The DOM of ``url`` once it has loaded, offline but for loopback, and its console errors."""
    result = run_chromium(
        browser, profile, "--enable-logging=stderr", "--v=0", OFFLINE, "--dump-dom", url
    )
    return result.stdout, console_errors(result.stderr)

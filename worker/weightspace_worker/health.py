"""The worker's health check: a heartbeat file kept fresh while the broker is reachable.

A thread of the worker process touches the file every ``INTERVAL_S`` seconds after it has
reached the broker; it keeps doing so while a long task runs (a solo pool cannot answer
``celery inspect ping`` then). ``python -m weightspace_worker.health`` exits 0 when the file is
fresher than ``MAX_AGE_S``, 1 otherwise: the container's HEALTHCHECK.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
from pathlib import Path

from celery import Celery
from weightspace_app.infra.settings import Settings

INTERVAL_S = 10.0
MAX_AGE_S = 60.0
log = logging.getLogger(__name__)
_stop = threading.Event()


def heartbeat_file(settings: Settings) -> Path:
    return Path(
        os.environ.get("WEIGHTSPACE_WORKER_HEARTBEAT") or settings.home / "worker.heartbeat"
    )


def beat_once(app: Celery, path: Path) -> bool:
    """Touch ``path`` if the broker answers now; say whether it did."""
    try:
        with app.connection_for_read() as connection:
            connection.ensure_connection(max_retries=1, timeout=5)
    except Exception as error:  # reported by a stale file, and here
        log.warning("heartbeat: broker unreachable: %s", error)
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    return True


def start(app: Celery, path: Path) -> threading.Thread:
    _stop.clear()

    def loop() -> None:
        while not _stop.is_set():
            beat_once(app, path)
            _stop.wait(INTERVAL_S)

    thread = threading.Thread(target=loop, name="weightspace-heartbeat", daemon=True)
    thread.start()
    return thread


def stop() -> None:
    _stop.set()


def age(path: Path) -> float | None:
    """Seconds since the last beat; None if there never was one."""
    try:
        return time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m weightspace_worker.health", description=__doc__
    )
    parser.add_argument("--max-age", type=float, default=MAX_AGE_S)
    args = parser.parse_args(argv)
    path = heartbeat_file(Settings())
    seconds = age(path)
    if seconds is None or seconds > args.max_age:
        last = "never" if seconds is None else f"{seconds:.0f} s ago"
        print(f"unhealthy: last heartbeat in {path} {last}", file=sys.stderr)
        return 1
    print(f"healthy: last heartbeat {seconds:.0f} s ago")
    return 0


if __name__ == "__main__":
    sys.exit(main())

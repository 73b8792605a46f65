"""A real uvicorn server for an app, in a thread of the test process (for real concurrency), and
beside it, where a test needs one, a real Celery worker process."""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from weightspace_app.infra.settings import Settings

from tests.e2e.scenario import spawn, stop
from weightspace_service.app import create_app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serving(app: FastAPI, timeout: float = 60) -> Iterator[str]:
    """Serve ``app`` on a free loopback port for the block; yields its base URL."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the API did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextlib.contextmanager
def api_and_worker(home: Path, database_url: str) -> Iterator[str]:
    """The API (served here) and a worker process (solo pool, both queues, CPU) sharing
    ``database_url``, a SQLite broker and a file snapshot store (``home/snapshots``); yields the
    API's base URL. The worker's log is printed if the block fails."""
    urls = {
        "database_url": database_url,
        "broker_url": f"sqla+sqlite:///{home / 'broker.db'}",
        "storage_url": f"file://{home / 'snapshots'}",
    }
    env = {
        **os.environ,
        "WEIGHTSPACE_HOME": str(home),
        "WEIGHTSPACE_DEVICE": "cpu",
        **{f"WEIGHTSPACE_{k.upper()}": v for k, v in urls.items()},
    }
    log = home / "worker.log"
    worker = spawn(
        [sys.executable, "-m", "weightspace_worker", "--queues", "cpu,gpu", "--pool", "solo"],
        env,
        log,
    )
    try:
        with serving(create_app(Settings(home=home, **urls))) as url:
            yield url
    except BaseException:
        print(log.read_text()[-4000:])
        raise
    finally:
        stop(worker)

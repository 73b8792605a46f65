"""The worker's heartbeat file: fresh while the broker answers, stale (unhealthy) otherwise."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest
from weightspace_app.infra.queue import make_celery
from weightspace_app.infra.settings import Settings

from weightspace_worker import health


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_reachable_broker_keeps_the_worker_healthy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_celery(Settings(home=tmp_path))  # the embedded broker: a SQLite file
    beat = tmp_path / "beat"
    monkeypatch.setenv("WEIGHTSPACE_WORKER_HEARTBEAT", str(beat))
    assert health.main([]) == 1  # never beaten
    assert health.beat_once(app, beat)
    assert health.main([]) == 0
    old = time.time() - 2 * health.MAX_AGE_S
    os.utime(beat, (old, old))
    assert health.main([]) == 1


def test_an_unreachable_broker_leaves_the_heartbeat_stale(tmp_path: Path) -> None:
    app = make_celery(Settings(home=tmp_path, broker_url=f"redis://127.0.0.1:{closed_port()}/0"))
    beat = tmp_path / "beat"
    assert not health.beat_once(app, beat)
    assert health.age(beat) is None

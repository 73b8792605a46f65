"""The periodic duties that keep experiments moving: relay the outbox, reap expired leases.

Runs as a thread in every API process (woken at once after a submission) and, in deployment,
as its own process too (``python -m weightspace_worker.maintain``, the compose file's
``maintenance`` service, which plays Celery beat's role without needing the broker to schedule
it). Several instances are safe: relaying locks the rows it publishes (PostgreSQL) and a task
published twice is a no-op for the second worker (leases); reaping only adds outbox entries.
"""

from __future__ import annotations

import logging
import threading
import time

from celery import Celery
from sqlalchemy.orm import Session, sessionmaker

from weightspace_app.infra import leases, outbox
from weightspace_app.infra.settings import Settings

log = logging.getLogger(__name__)


def celery_publisher(celery: Celery) -> outbox.Publish:
    def publish(task: str, args: list[object], queue: str) -> None:
        celery.send_task(task, args=args, queue=queue)

    return publish


class Maintenance:
    def __init__(
        self, settings: Settings, sessions: sessionmaker[Session], publish: outbox.Publish
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.relay = outbox.Relay(sessions, publish, timeout=settings.publish_timeout)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._reaped_at = 0.0
        self._thread: threading.Thread | None = None

    def tick(self) -> None:
        """One round: reap if due, then relay what is pending."""
        now = time.monotonic()
        if now - self._reaped_at >= self.settings.reaper_interval:
            self._reaped_at = now
            leases.reap(
                self.sessions,
                lease_seconds=self.settings.lease_seconds,
                requeue_after=self.settings.requeue_after,
            )
        self.relay.relay_once()

    def loop(self) -> None:
        interval = min(self.settings.relay_interval, self.settings.reaper_interval)
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception as error:  # the database or broker blinked: next round
                log.warning("maintenance round failed: %s", type(error).__name__)
            self._wake.wait(interval)
            self._wake.clear()

    def wake(self) -> None:
        """Relay now (after a submission) instead of at the next interval."""
        self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self.loop, name="maintenance", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

"""The worker's entry in the worker registry (weightspace_app.infra.workers), kept fresh.

A thread advertises the worker once it is ready, then every third of ``WEIGHTSPACE_WORKER_TTL``
(while a long task runs too); a clean shutdown removes the entry, a dead worker's expires.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from functools import cache

from sqlalchemy.orm import Session, sessionmaker
from weightspace_app.infra import workers
from weightspace_app.infra.db import make_engine, make_sessionmaker
from weightspace_app.infra.settings import Settings

log = logging.getLogger(__name__)
_stop = threading.Event()
_advertised: list[str] = []
_threads: list[threading.Thread] = []


@cache
def _sessions(url: str) -> sessionmaker[Session]:
    return make_sessionmaker(make_engine(url))


def start(settings: Settings, worker_id: str, queues: Sequence[str]) -> threading.Thread:
    _stop.clear()
    sessions = _sessions(settings.database_url)

    def loop() -> None:
        advert = workers.describe_worker(worker_id, queues, settings)
        log.info(
            "advertising %s: queues %s, %s (%s), data sets %s",
            worker_id,
            ",".join(queues),
            advert.device,
            advert.device_name,
            advert.datasets,
        )
        _advertised.append(worker_id)
        while not _stop.is_set():
            try:
                workers.advertise(sessions, advert)
            except Exception as error:  # the database may be down for a while: keep trying
                log.warning("worker registry: heartbeat failed: %s", error)
            _stop.wait(settings.worker_ttl / 3)

    thread = threading.Thread(target=loop, name="weightspace-registry", daemon=True)
    thread.start()
    _threads.append(thread)
    return thread


def stop(settings: Settings) -> None:
    """Stop the heartbeat and remove this worker's entry."""
    _stop.set()
    for thread in _threads:  # a heartbeat in flight must not write the entry back
        thread.join(timeout=10)
    _threads.clear()
    for worker_id in _advertised:
        try:
            workers.retire(_sessions(settings.database_url), worker_id)
        except Exception as error:  # it expires after the TTL anyway
            log.warning("worker registry: could not remove %s: %s", worker_id, error)
    _advertised.clear()

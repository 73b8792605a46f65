"""The worker's Celery application, configured from the environment (``WEIGHTSPACE_*``)."""

from __future__ import annotations

from typing import Any

from celery.signals import setup_logging, worker_ready, worker_shutdown
from weightspace_app.infra.queue import make_celery
from weightspace_app.infra.settings import Settings

from weightspace_worker import health, registry

settings = Settings()
app = make_celery(settings)
app.conf.include = ["weightspace_worker.tasks"]


@setup_logging.connect
def _configure_logging(**_: Any) -> None:
    # Connecting here replaces Celery's own logging set-up with the service's one.
    settings.configure_logging()


@worker_ready.connect
def _start_heartbeat(sender: Any = None, **_: Any) -> None:
    health.start(app, health.heartbeat_file(settings))
    # sender: the worker's consumer, which knows its hostname and the queues it consumes.
    queues = sorted(app.amqp.queues.consume_from or app.amqp.queues)
    registry.start(settings, sender.hostname, queues)


@worker_shutdown.connect
def _stop_heartbeat(**_: Any) -> None:
    health.stop()
    registry.stop(settings)

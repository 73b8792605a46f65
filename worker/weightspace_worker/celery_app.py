"""The worker's Celery application, configured from the environment (``WEIGHTSPACE_*``)."""

from __future__ import annotations

from weightspace.adapters.queue import make_celery
from weightspace.adapters.settings import Settings

settings = Settings()
app = make_celery(settings)
app.conf.include = ["weightspace_worker.tasks"]

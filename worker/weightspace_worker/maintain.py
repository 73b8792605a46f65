"""``python -m weightspace_worker.maintain``: relay the outbox and reap expired leases, forever.

The deployment's periodic scheduler (Celery beat's role, without depending on the broker to
schedule it): re-enqueues experiments whose worker died and publishes tasks whose submission
met a broker outage. The API runs the same loop in a thread; running both is safe.
"""

from __future__ import annotations

import logging
import signal
from types import FrameType

from weightspace_app.infra.db import make_engine, make_sessionmaker
from weightspace_app.infra.maintenance import Maintenance, celery_publisher
from weightspace_app.infra.queue import make_celery
from weightspace_app.infra.settings import Settings


def main() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = Settings()
    sessions = make_sessionmaker(make_engine(settings.database_url))
    maintenance = Maintenance(settings, sessions, celery_publisher(make_celery(settings)))

    def stop(signum: int, frame: FrameType | None) -> None:
        maintenance.stop(timeout=0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    logging.getLogger(__name__).info("maintenance: relaying the outbox, reaping leases")
    maintenance.loop()


if __name__ == "__main__":
    main()

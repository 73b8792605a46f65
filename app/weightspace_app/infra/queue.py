"""The Celery application shared by the API (which enqueues by task name) and the worker."""

from __future__ import annotations

from celery import Celery
from kombu.entity import Exchange, Queue

from weightspace.vocabulary import QUEUES
from weightspace_app.infra.settings import Settings

TRAIN_TASK = "weightspace.train_experiment"
REPORT_TASK = "weightspace.build_report"
BARRIERS_TASK = "weightspace.compute_barriers"
LANDSCAPE_TASK = "weightspace.compute_landscape"
JOINT_BARRIERS_TASK = "weightspace.compute_joint_barriers"
GRAM_TASK = "weightspace.compute_gram"
GRAM_SHARD_TASK = "weightspace.compute_gram_shard"
VERIFY_TASK = "weightspace.verify_experiment"


def _transport_options(settings: Settings) -> dict[str, object]:
    # Redis and SQS redeliver an unacknowledged task after the visibility timeout; the embedded
    # SQLAlchemy transport has none (its options go to create_engine) and AMQP needs none.
    if settings.broker_url.startswith(("redis", "rediss", "sqs")):
        return {"visibility_timeout": settings.visibility_timeout}
    return {}


def make_celery(settings: Settings) -> Celery:
    settings.prepare_home()
    app = Celery("weightspace", broker=settings.broker_url, set_as_current=False)
    app.conf.update(
        # Long training tasks: acknowledge after the work, take one at a time, and let the broker
        # redeliver a task whose worker died (it resumes from the last snapshot).
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_transport_options=_transport_options(settings),
        # Each queue its own direct exchange and key: a task sent to "cpu" lands in "cpu" only.
        task_queues=[
            Queue(name, Exchange(name, type="direct"), routing_key=name) for name in QUEUES
        ],
        task_default_queue=settings.default_queue,
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,  # status and progress live in the database
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=5,
        # Submitting fails fast when the broker is down: the API answers 503 and writes nothing.
        task_publish_retry_policy={
            "max_retries": 2,
            "interval_start": 0,
            "interval_step": 0.5,
            "interval_max": 1,
        },
    )
    return app

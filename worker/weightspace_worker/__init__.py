"""The Celery worker: tasks that re-read state by id and call the use cases."""

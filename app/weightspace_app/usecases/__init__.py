"""Use cases: one function per thing a caller can ask, free of HTTP and of Celery."""

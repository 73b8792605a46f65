"""The application layer: what the API, the worker, the tests and ``bench/`` share.

- :mod:`weightspace_app.usecases`: each use case once (submit, read, analyse, lifecycle, uploads,
  suites, tokens), called by the routes, the Celery tasks, the tests and the benches alike;
- :mod:`weightspace_app.infra`: the infrastructure they stand on (settings, database, object
  store, queue, outbox, leases, cached jobs, logs, the server processes);
- :mod:`weightspace_app.access`: who is asking, and the errors every use case shares.

It imports the core (:mod:`weightspace`) and the server's libraries (SQLAlchemy, Celery, boto3);
never FastAPI, the service, the worker or the client. The core never imports it.
"""

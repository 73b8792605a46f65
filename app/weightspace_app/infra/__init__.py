"""Infrastructure: settings, database, object store, queue, outbox, leases, cached jobs, logs and
the server processes."""

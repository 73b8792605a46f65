"""Alembic environment: runs the migrations against PostgreSQL or SQLite, online or offline.

The database URL comes from the caller (``config.attributes["url"]``, set by
``weightspace_app.infra.migrate``), else from ``sqlalchemy.url`` if a caller set it, else from
``WEIGHTSPACE_DATABASE_URL`` (``weightspace_app.infra.settings``). A caller may also hand over an
open connection in ``config.attributes["connection"]``.
"""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import create_engine, make_url
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool
from weightspace_app.infra.db import Base
from weightspace_app.infra.migrate import ensure_sqlite_directory

config = context.config

target_metadata = Base.metadata

# Tables in the same database that belong to someone else (Celery's result backend, kombu's
# SQLAlchemy transport): autogenerate must neither create nor drop them.
FOREIGN_TABLE_PREFIXES = ("celery_", "kombu_")


def database_url() -> str:
    url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
    if url:
        return str(url)
    from weightspace_app.infra.settings import Settings

    return Settings().database_url


def include_name(name: str | None, type_: str, _parent_names: Any) -> bool:
    return not (type_ == "table" and name is not None and name.startswith(FOREIGN_TABLE_PREFIXES))


def configure(backend: str, **options: Any) -> None:
    context.configure(
        target_metadata=target_metadata,
        compare_type=True,
        include_name=include_name,
        # SQLite cannot ALTER most things: batch operations copy the table instead.
        render_as_batch=backend == "sqlite",
        **options,
    )


def run_migrations_offline() -> None:
    """Write the SQL to stdout instead of running it (``alembic upgrade head --sql``)."""
    url = database_url()
    backend = make_url(url).get_backend_name()
    configure(backend, url=url, literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_with(connection: Connection) -> None:
    configure(connection.dialect.name, connection=connection)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        run_with(connection)
        return
    url = database_url()
    ensure_sqlite_directory(url)
    # A plain engine, not db.make_engine: SQLite foreign keys stay off while migrating, since
    # batch operations drop and recreate tables (with them on, dropping a parent would cascade).
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            run_with(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

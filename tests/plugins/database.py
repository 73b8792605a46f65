"""Database fixtures: throwaway PostgreSQL databases, migrated once; a rolled-back session per test.

Load with ``pytest_plugins = ["tests.plugins.database"]`` (or ``pytest -p tests.plugins.database``).

PostgreSQL is reached as ``postgres`` on 127.0.0.1:5432 unless ``WEIGHTSPACE_TEST_POSTGRES`` gives
another admin URL (``postgresql://user:password@host:port/postgres``); that user must be allowed
to create databases. Every database made here has a random name and is dropped afterwards, since
the server may be shared.

- ``postgres_url`` (session): a new empty database; its SQLAlchemy URL.
- ``migrated_postgres_url`` (session): the same database after ``upgrade(url)`` to head.
- ``postgres_engine`` (session): an engine on it.
- ``db_session`` (function): a Session on it whose work, commits included, is rolled back.
- ``fresh_postgres_url`` (function): a new empty database of the test's own, dropped after it.
- ``sqlite_url`` (function): a SQLite file in ``tmp_path`` (not created, not migrated).
- ``migrated_sqlite_url`` (function): ``sqlite_url`` after ``upgrade(url)`` to head.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import URL, make_url
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from weightspace_app.infra.db import make_engine
from weightspace_app.infra.migrate import upgrade

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DATABASE_PREFIX = "weightspace_test_"


def admin_url() -> URL:
    """The URL of the server's maintenance database, as a user that may create databases."""
    return make_url(os.environ.get("WEIGHTSPACE_TEST_POSTGRES") or DEFAULT_ADMIN_URL)


def _conninfo(url: URL) -> str:
    """A libpq URI for psycopg (no SQLAlchemy driver suffix)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _admin_connection() -> psycopg.Connection:
    url = admin_url()
    try:
        return psycopg.connect(_conninfo(url), autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as error:
        pytest.fail(
            f"cannot reach PostgreSQL at {url.render_as_string(hide_password=True)} "
            f"(set WEIGHTSPACE_TEST_POSTGRES to an admin URL): {error}",
            pytrace=False,
        )


def drop_database(name: str) -> None:
    """Drop ``name``, ending any connection still open on it."""
    with _admin_connection() as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@contextlib.contextmanager
def temporary_database() -> Iterator[str]:
    """A new, empty, randomly named database for the block; yields its SQLAlchemy URL."""
    name = DATABASE_PREFIX + secrets.token_hex(6)
    with _admin_connection() as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        url = admin_url().set(drivername="postgresql+psycopg", database=name)
        yield url.render_as_string(hide_password=False)
    finally:
        drop_database(name)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A new empty PostgreSQL database for the session (``postgresql+psycopg://...``)."""
    with temporary_database() as url:
        yield url


@pytest.fixture(scope="session")
def migrated_postgres_url(postgres_url: str) -> str:
    """``postgres_url`` migrated to head once, by the migrations themselves (not create_all)."""
    upgrade(postgres_url)
    return postgres_url


@pytest.fixture(scope="session")
def postgres_engine(migrated_postgres_url: str) -> Iterator[Engine]:
    """An engine (``db.make_engine``) on the session's migrated database."""
    engine = make_engine(migrated_postgres_url)
    yield engine
    engine.dispose()


@contextlib.contextmanager
def rolled_back_session(engine: Engine) -> Iterator[Session]:
    """A Session whose every change, ``commit()`` included, is undone when the block ends.

    The session joins an outer transaction on one connection; its commits and rollbacks act on
    savepoints (SQLAlchemy 2.0's ``join_transaction_mode="create_savepoint"``).
    """
    with engine.connect() as connection:
        transaction = connection.begin()
        session = Session(
            bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
        )
        try:
            yield session
        finally:
            session.close()
            if transaction.is_active:
                transaction.rollback()


@pytest.fixture
def db_session(postgres_engine: Engine) -> Iterator[Session]:
    """A Session on the migrated PostgreSQL database, rolled back after the test."""
    with rolled_back_session(postgres_engine) as session:
        yield session


@pytest.fixture
def fresh_postgres_url() -> Iterator[str]:
    """A new empty PostgreSQL database of the test's own, dropped after it."""
    with temporary_database() as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """The URL of a SQLite file in ``tmp_path`` (not created yet)."""
    return f"sqlite:///{tmp_path / 'weightspace.db'}"


@pytest.fixture
def migrated_sqlite_url(sqlite_url: str) -> str:
    """``sqlite_url`` migrated to head."""
    upgrade(sqlite_url)
    return sqlite_url

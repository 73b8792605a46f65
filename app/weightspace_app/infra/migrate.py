"""Database migrations (Alembic) run from code, and from the command line as a deployment step.

    python -m weightspace_app.infra.migrate upgrade [REVISION]   # default: head
    python -m weightspace_app.infra.migrate downgrade REVISION   # -1, base or a revision id
    python -m weightspace_app.infra.migrate current              # print the database's revision
    python -m weightspace_app.infra.migrate check                # exit 1 unless at head

    python -m weightspace_app.infra.migrate revision -m "add tokens" [--autogenerate]

The command line migrates ``WEIGHTSPACE_DATABASE_URL`` (default: the embedded SQLite file).
The migration scripts are the package ``weightspace_migrations`` (``migrations/`` in a checkout),
found through package resources, so an installed wheel migrates as a checkout does; Alembic's
configuration is built here in code (there is no ``alembic.ini``).
"""

from __future__ import annotations

import argparse
import functools
import logging
import sys
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import column, create_engine, inspect, make_url, select, table
from sqlalchemy.pool import NullPool

MIGRATIONS_PACKAGE = "weightspace_migrations"
#: New revision files are named by date, then id and slug.
FILE_TEMPLATE = "%%(year)d-%%(month).2d-%%(day).2d_%%(rev)s_%%(slug)s"
VERSION_TABLE = "alembic_version"  # Alembic's default, which migrations/env.py keeps
VERSION_TABLE_COLUMN = table(VERSION_TABLE, column("version_num")).c.version_num


class DatabaseNotMigrated(RuntimeError):
    """The database's schema revision is not the one this code was written for."""

    def __init__(self, current: Sequence[str], expected: Sequence[str]) -> None:
        self.current = tuple(current)
        self.expected = tuple(expected)
        at = ", ".join(self.current) or "no revision (not migrated)"
        super().__init__(
            f"database is at {at}, expected {', '.join(self.expected)}; "
            "run `python -m weightspace_app.infra.migrate upgrade`"
        )


def migrations_directory() -> Path:
    """Where the installed migration scripts are (a real directory: wheels are not zipped)."""
    return Path(str(resources.files(MIGRATIONS_PACKAGE)))


def alembic_config(url: str) -> Config:
    """An Alembic configuration for the packaged migrations, pointed at ``url``."""
    config = Config()
    config.set_main_option("script_location", str(migrations_directory()))
    config.set_main_option("file_template", FILE_TEMPLATE)
    config.set_main_option("truncate_slug_length", "40")
    config.set_main_option("path_separator", "os")
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))  # ConfigParser escaping
    config.attributes["url"] = url  # what migrations/env.py uses
    return config


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite database URL; None for other databases, memory and SQLite URIs."""
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if parsed.query.get("uri") or database.startswith("file:"):
        return None  # a SQLite URI ("file:...?mode=..."): its owner knows where it is
    return Path(database).expanduser()


def ensure_sqlite_directory(url: str) -> None:
    """Create the directory of a SQLite database file if it does not exist yet."""
    path = sqlite_file(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at ``url`` up to ``revision``."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    """Migrate the database at ``url`` down to ``revision`` (by default: no tables at all)."""
    command.downgrade(alembic_config(url), revision)


@functools.cache
def head_revisions() -> tuple[str, ...]:
    """The revisions that the migrations in the repository end at (one, unless branched)."""
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))  # the URL is not used
    return tuple(script.get_heads())


def current_revisions(url: str) -> tuple[str, ...]:
    """The revisions the database at ``url`` is at; empty if it was never migrated."""
    path = sqlite_file(url)
    if path is not None and not path.exists():
        return ()  # do not create an empty file just to look at it
    # Read alembic_version directly: MigrationContext logs at INFO on every call, and /ready
    # calls this often.
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            if not inspect(connection).has_table(VERSION_TABLE):
                return ()
            return tuple(connection.scalars(select(VERSION_TABLE_COLUMN)))
    finally:
        engine.dispose()


def current(url: str) -> str | None:
    """The revision the database at ``url`` is at, or None if it was never migrated."""
    revisions = current_revisions(url)
    return ",".join(sorted(revisions)) if revisions else None


def check(url: str) -> str:
    """Raise :class:`DatabaseNotMigrated` unless the database is at head; return its revision."""
    revisions = current_revisions(url)
    expected = head_revisions()
    if set(revisions) != set(expected):
        raise DatabaseNotMigrated(revisions, expected)
    return ",".join(sorted(revisions))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m weightspace_app.infra.migrate",
        description="Migrate the database at WEIGHTSPACE_DATABASE_URL.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("upgrade", help="migrate up (default: to head)")
    up.add_argument("revision", nargs="?", default="head")
    # No default: a forgotten argument must not drop every table.
    down = commands.add_parser("downgrade", help="migrate down to REVISION (-1, base, an id)")
    down.add_argument("revision")
    commands.add_parser("current", help="print the database's revision")
    commands.add_parser("check", help="exit with status 1 unless the database is at head")
    new = commands.add_parser("revision", help="write a new migration script (development)")
    new.add_argument("-m", "--message", required=True)
    new.add_argument("--autogenerate", action="store_true", help="diff the tables and the database")
    args = parser.parse_args(argv)

    from weightspace_app.infra.settings import Settings

    url = Settings().database_url
    # Alembic's progress at INFO; the root stays at WARNING so that SQLAlchemy does not echo SQL.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)-5.5s [%(name)s] %(message)s")
    logging.getLogger("alembic").setLevel(logging.INFO)
    shown = make_url(url).render_as_string(hide_password=True)

    if args.command == "upgrade":
        print(f"upgrading {shown} to {args.revision}", file=sys.stderr)
        upgrade(url, args.revision)
    elif args.command == "downgrade":
        print(f"downgrading {shown} to {args.revision}", file=sys.stderr)
        downgrade(url, args.revision)
    elif args.command == "current":
        print(current(url) or "none")
    elif args.command == "revision":
        command.revision(alembic_config(url), message=args.message, autogenerate=args.autogenerate)
    else:
        try:
            print(check(url))
        except DatabaseNotMigrated as error:
            print(f"{shown}: {error}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

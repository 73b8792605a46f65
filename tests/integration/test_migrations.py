"""Alembic migrations on real PostgreSQL and SQLite: up, down, schema = models; the db fixtures."""

from __future__ import annotations

import io
import itertools
import re
import uuid
from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, create_engine, delete, func, insert, inspect, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool
from weightspace_app.infra import migrate
from weightspace_app.infra.db import Base, Experiment, Run, SnapshotRecord, make_engine
from weightspace_app.infra.migrate import DatabaseNotMigrated, alembic_config, check, current

from tests.plugins.database import rolled_back_session
from weightspace.vocabulary import JOB_STATUSES, REPORT_STATUSES, SOURCES, STATUSES

pytestmark = pytest.mark.integration

ROLLBACK_MARKER = f"rollback-{uuid.uuid4().hex}"


def revisions_from_base() -> list[str]:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return [script.revision for script in reversed(list(script.walk_revisions("base", "heads")))]


def schema_differences(url: str) -> list:
    """What autogenerate would change to make the database match the models (nothing, ideally)."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()


def table_names(url: str) -> set[str]:
    engine = create_engine(url, poolclass=NullPool)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def version_rows(url: str) -> list[str]:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return list(connection.scalars(text("SELECT version_num FROM alembic_version")))
    finally:
        engine.dispose()


@pytest.fixture(params=["postgresql", "sqlite"])
def empty_url(request: pytest.FixtureRequest) -> str:
    """An empty database of the test's own on each backend."""
    return request.getfixturevalue(
        "fresh_postgres_url" if request.param == "postgresql" else "sqlite_url"
    )


def test_migration_files_are_named_by_date() -> None:
    files = sorted(path.name for path in (migrate.migrations_directory() / "versions").glob("*.py"))
    assert files
    undated = [name for name in files if not re.match(r"^\d{4}-\d{2}-\d{2}_", name)]
    assert not undated
    assert len(revisions_from_base()) == len(files)


def test_every_migration_up_and_down(empty_url: str) -> None:
    revisions = revisions_from_base()
    head = revisions[-1]
    assert migrate.head_revisions() == (head,)
    assert current(empty_url) is None
    with pytest.raises(DatabaseNotMigrated, match="not migrated"):
        check(empty_url)

    for revision in revisions:  # one step at a time, so each migration runs on its own
        migrate.upgrade(empty_url, revision)
        assert current(empty_url) == revision
    assert schema_differences(empty_url) == []
    assert table_names(empty_url) == set(Base.metadata.tables) | {"alembic_version"}
    assert check(empty_url) == head

    migrate.upgrade(empty_url)  # again: nothing to do
    assert version_rows(empty_url) == [head]
    assert schema_differences(empty_url) == []

    for expected in reversed([None, *revisions[:-1]]):
        migrate.downgrade(empty_url, "-1")
        assert current(empty_url) == expected
    # Only Alembic's own (now empty) version table is left.
    assert table_names(empty_url) == {"alembic_version"}
    assert version_rows(empty_url) == []
    with pytest.raises(DatabaseNotMigrated):
        check(empty_url)
    migrate.downgrade(empty_url)  # already at base: nothing to do

    migrate.upgrade(empty_url)  # and back up from there
    assert schema_differences(empty_url) == []
    assert check(empty_url) == head


STATUS_CHECKS = "7193f1ca4d48"  # the migration that adds the CHECKs on the status columns
#: Table -> column -> every value the vocabulary allows (weightspace.vocabulary).
VOCABULARIES = {
    "suites": {"report_status": REPORT_STATUSES},
    "experiments": {"status": STATUSES, "source": SOURCES},
    "runs": {"status": STATUSES},
    "cached_jobs": {"status": JOB_STATUSES},
}


def test_status_checks_keep_existing_rows_and_refuse_other_values(empty_url: str) -> None:
    """On a database written before the CHECKs, rows with every status survive the upgrade
    unchanged; afterwards the database itself refuses a value outside the vocabulary."""
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    migrate.upgrade(empty_url, str(script.get_revision(STATUS_CHECKS).down_revision))
    now = datetime.now(UTC)
    experiment = uuid.uuid4().hex  # 32 hex digits: what SQLite stores, and PostgreSQL reads
    rows = {
        "suites": [
            {"id": uuid.uuid4().hex, "owner": "o", "preset": "quick", "dataset": "digits"}
            | {"report_status": status, "created_at": now}
            for status in REPORT_STATUSES
        ],
        "experiments": [
            {"id": uuid.uuid4().hex, "owner": "o", "spec": {}, "queue": "cpu", "created_at": now}
            | {"status": status, "source": source}
            for status, source in zip(STATUSES, itertools.cycle(SOURCES), strict=False)
        ],
        "runs": [
            {"experiment_id": experiment, "run": run, "status": status}
            for run, status in enumerate(STATUSES)
        ],
        "cached_jobs": [
            {"key": status, "owner": "o", "status": status, "created_at": now}
            for status in JOB_STATUSES
        ],
    }
    rows["experiments"][0]["id"] = experiment
    engine = create_engine(empty_url, poolclass=NullPool)
    try:
        written = MetaData()
        written.reflect(engine, only=list(rows))
        with engine.begin() as connection:
            for name, values in rows.items():
                connection.execute(
                    insert(written.tables[name]), [v | {"updated_at": now} for v in values]
                )

        migrate.upgrade(empty_url, STATUS_CHECKS)
        with engine.connect() as connection:
            for name, columns in VOCABULARIES.items():
                for column, vocabulary in columns.items():
                    found = connection.scalars(text(f"SELECT {column} FROM {name}"))
                    assert set(found) == set(vocabulary), (name, column)
                    with pytest.raises(IntegrityError, match=f"ck_{name}_{column}"):
                        connection.execute(text(f"UPDATE {name} SET {column} = 'other'"))
                    connection.rollback()
    finally:
        engine.dispose()


def test_schema_uses_the_naming_convention(empty_url: str) -> None:
    """Constraint and index names, and ON DELETE CASCADE, are those of the models."""
    migrate.upgrade(empty_url)
    engine = create_engine(empty_url, poolclass=NullPool)
    try:
        inspector = inspect(engine)
        for table in Base.metadata.sorted_tables:
            assert inspector.get_pk_constraint(table.name)["name"] == f"pk_{table.name}"
            expected_fks = {
                (fk.name, tuple(fk.column_keys), fk.referred_table.name, fk.ondelete)
                for fk in table.foreign_key_constraints
            }
            found_fks = {
                (
                    fk["name"],
                    tuple(fk["constrained_columns"]),
                    fk["referred_table"],
                    fk["options"].get("ondelete"),
                )
                for fk in inspector.get_foreign_keys(table.name)
            }
            assert found_fks == expected_fks
            expected_indexes = {
                (ix.name, tuple(column.name for column in ix.columns)) for ix in table.indexes
            }
            found_indexes = {
                (ix["name"], tuple(ix["column_names"])) for ix in inspector.get_indexes(table.name)
            }
            assert found_indexes == expected_indexes
    finally:
        engine.dispose()
    assert inspector.get_indexes("experiments")  # the loop did look at something


def test_offline_sql_for_postgresql() -> None:
    config = alembic_config("postgresql+psycopg://nobody@localhost/nothing")
    config.output_buffer = io.StringIO()
    from alembic import command

    command.upgrade(config, "head", sql=True)
    script = config.output_buffer.getvalue()
    assert "CREATE TABLE experiments" in script
    assert "ON DELETE CASCADE" in script
    assert "CONSTRAINT pk_snapshots PRIMARY KEY" in script


def test_check_does_not_create_a_missing_sqlite_file(tmp_path) -> None:
    path = tmp_path / "absent" / "weightspace.db"
    with pytest.raises(DatabaseNotMigrated):
        check(f"sqlite:///{path}")
    assert current(f"sqlite:///{path}") is None
    assert not path.parent.exists()


def test_command_line(tmp_path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    path = tmp_path / "not" / "yet" / "weightspace.db"  # the directory is made for it
    monkeypatch.setenv("WEIGHTSPACE_DATABASE_URL", f"sqlite:///{path}")
    head = migrate.head_revisions()[0]

    assert migrate.main(["check"]) == 1
    assert migrate.main(["upgrade"]) == 0
    assert path.is_file()
    capsys.readouterr()
    assert migrate.main(["current"]) == 0
    assert capsys.readouterr().out.strip() == head
    assert migrate.main(["check"]) == 0
    with pytest.raises(SystemExit):
        migrate.main(["downgrade"])  # a revision must be named
    assert migrate.main(["downgrade", "base"]) == 0
    assert current(f"sqlite:///{path}") is None


# -- the db_session fixture ------------------------------------------------------------------


def count_marked(engine: Engine) -> int:
    """Experiments with the marker owner, as another connection sees them."""
    with engine.connect() as connection:
        return connection.scalar(
            select(func.count()).select_from(Experiment).where(Experiment.owner == ROLLBACK_MARKER)
        )


def marked_experiment() -> Experiment:
    return Experiment(owner=ROLLBACK_MARKER, spec={}, queue="cpu")


def test_db_session_commits_are_not_seen_outside(
    db_session: Session, postgres_engine: Engine
) -> None:
    db_session.add(marked_experiment())
    db_session.commit()
    assert db_session.scalar(select(func.count()).where(Experiment.owner == ROLLBACK_MARKER)) == 1
    assert count_marked(postgres_engine) == 0


def test_db_session_left_nothing_behind(db_session: Session, postgres_engine: Engine) -> None:
    """Runs after the test above (file order): its committed experiment is gone."""
    assert db_session.scalar(select(func.count()).where(Experiment.owner == ROLLBACK_MARKER)) == 0
    assert count_marked(postgres_engine) == 0


def test_rolled_back_session_undoes_commits(postgres_engine: Engine) -> None:
    with rolled_back_session(postgres_engine) as session:
        kept, dropped = marked_experiment(), marked_experiment()
        session.add(kept)
        session.commit()
        session.add(dropped)
        session.rollback()  # undoes only what came after the commit
        owners = session.scalars(select(Experiment.id).where(Experiment.owner == ROLLBACK_MARKER))
        assert list(owners) == [kept.id]
    assert count_marked(postgres_engine) == 0


# -- the tables through the ORM --------------------------------------------------------------


@pytest.fixture(params=["postgresql", "sqlite"])
def orm_session(request: pytest.FixtureRequest):
    if request.param == "postgresql":
        yield request.getfixturevalue("db_session")
        return
    engine = make_engine(request.getfixturevalue("migrated_sqlite_url"))
    try:
        with Session(engine, expire_on_commit=False) as session:
            yield session
    finally:
        engine.dispose()


def test_experiment_runs_and_snapshots_round_trip_and_cascade(orm_session: Session) -> None:
    session = orm_session
    spec = {"model": "mlp", "runs": 2}
    experiment = Experiment(owner="alice", name="pair", spec=spec, queue="cpu")
    experiment.runs = [
        Run(run=run, init_seed=2**40 + run, data_seed=7, final_epoch=3) for run in range(2)
    ]
    session.add(experiment)
    session.flush()
    session.add_all(
        [
            SnapshotRecord(
                experiment_id=experiment.id,
                run=1,
                epoch=3,
                key=f"experiments/{experiment.id}/run-1/epoch-3.safetensors",
                size=2**33,
                sha256="ab" * 32,
                parameters=101_770,
                metrics={"loss": 0.25, "accuracy": 0.9},
            ),
        ]
    )
    session.commit()
    experiment_id = experiment.id
    session.expunge_all()

    loaded = session.get(Experiment, experiment_id)
    assert loaded is not None
    assert (loaded.owner, loaded.name, loaded.spec, loaded.status) == (
        "alice",
        "pair",
        spec,
        "queued",
    )
    assert loaded.created_at is not None
    assert [(r.run, r.init_seed, r.status) for r in loaded.runs] == [
        (0, 2**40, "queued"),
        (1, 2**40 + 1, "queued"),
    ]
    snapshot = session.get(SnapshotRecord, (experiment_id, 1, 3))
    assert snapshot is not None
    assert (snapshot.size, snapshot.metrics) == (2**33, {"loss": 0.25, "accuracy": 0.9})

    # A bulk DELETE: the ORM cascades nothing, the database's ON DELETE CASCADE does it all.
    session.execute(delete(Experiment).where(Experiment.id == experiment_id))
    session.commit()
    session.expunge_all()
    for model in (Experiment, Run, SnapshotRecord):
        column = model.id if model is Experiment else model.experiment_id
        assert session.scalar(select(func.count()).where(column == experiment_id)) == 0, model

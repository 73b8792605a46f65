"""Cached worker jobs (barriers, landscape planes, barriers across experiments): one row each.

The barriers' status moves from two columns of ``experiments`` to rows keyed
``barriers/<experiment id hex>`` (their JSON stays where it is in the store).

Revision ID: d3a8c61f0e25
Revises: d5e7a1c3b920
Create Date: 2026-11-28 21:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d3a8c61f0e25"
down_revision: str | Sequence[str] | None = "d5e7a1c3b920"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cached_jobs",
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("experiment_id", sa.Uuid(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name=op.f("fk_cached_jobs_experiment_id_experiments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_cached_jobs")),
    )
    op.create_index(op.f("ix_cached_jobs_owner"), "cached_jobs", ["owner"])
    op.create_index(op.f("ix_cached_jobs_experiment_id"), "cached_jobs", ["experiment_id"])
    op.execute(
        'INSERT INTO cached_jobs ("key", owner, experiment_id, status, error, created_at, '
        f"updated_at) SELECT 'barriers/' || {_hex_id()}, owner, id, barriers_status, "
        "barriers_error, updated_at, updated_at FROM experiments "
        "WHERE barriers_status IS NOT NULL"
    )
    with op.batch_alter_table("experiments") as batch:
        batch.drop_column("barriers_error")
        batch.drop_column("barriers_status")


def _hex_id() -> str:
    """SQL for an experiment id as 32 hex digits (SQLite stores it so already)."""
    if op.get_context().dialect.name == "postgresql":
        return "replace(CAST(id AS TEXT), '-', '')"
    return "id"


def downgrade() -> None:
    with op.batch_alter_table("experiments") as batch:
        batch.add_column(sa.Column("barriers_status", sa.String(length=20), nullable=True))
        batch.add_column(sa.Column("barriers_error", sa.Text(), nullable=True))
    for column, source in (("barriers_status", "status"), ("barriers_error", "error")):
        op.execute(
            f"UPDATE experiments SET {column} = (SELECT {source} FROM cached_jobs "
            "WHERE cached_jobs.experiment_id = experiments.id "
            "AND cached_jobs.\"key\" LIKE 'barriers/%')"
        )
    op.drop_index(op.f("ix_cached_jobs_experiment_id"), table_name="cached_jobs")
    op.drop_index(op.f("ix_cached_jobs_owner"), table_name="cached_jobs")
    op.drop_table("cached_jobs")

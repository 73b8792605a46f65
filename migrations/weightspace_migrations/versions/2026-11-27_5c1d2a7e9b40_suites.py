"""Suites: the paper's four experiments submitted together from a preset, with their report.

Revision ID: 5c1d2a7e9b40
Revises: e53f050ed166
Create Date: 2026-11-27 01:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5c1d2a7e9b40"
down_revision: str | Sequence[str] | None = "e53f050ed166"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "suites",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("preset", sa.String(length=50), nullable=False),
        sa.Column("dataset", sa.String(length=50), nullable=False),
        sa.Column("report_status", sa.String(length=20), nullable=False),
        sa.Column("report_error", sa.Text(), nullable=True),
        sa.Column("report_files", sa.JSON(), nullable=True),
        sa.Column("claims", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_suites")),
    )
    op.create_index(op.f("ix_suites_owner"), "suites", ["owner"])
    with op.batch_alter_table("experiments") as batch:
        batch.add_column(sa.Column("suite_id", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("role", sa.String(length=40), nullable=True))
        batch.create_index(batch.f("ix_experiments_suite_id"), ["suite_id"])
        batch.create_foreign_key(
            batch.f("fk_experiments_suite_id_suites"),
            "suites",
            ["suite_id"],
            ["id"],
            ondelete="CASCADE",
        )


def downgrade() -> None:
    with op.batch_alter_table("experiments") as batch:
        batch.drop_constraint(batch.f("fk_experiments_suite_id_suites"), type_="foreignkey")
        batch.drop_index(batch.f("ix_experiments_suite_id"))
        batch.drop_column("role")
        batch.drop_column("suite_id")
    op.drop_index(op.f("ix_suites_owner"), table_name="suites")
    op.drop_table("suites")

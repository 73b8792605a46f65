"""Verdicts: gradient norms per snapshot, replicates (seeds) of a suite, barrier jobs.

Revision ID: a7c3e19b5d42
Revises: c4f2a9e7b113
Create Date: 2026-11-28 18:15:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a7c3e19b5d42"
down_revision: str | Sequence[str] | None = "c4f2a9e7b113"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("snapshots") as batch:
        batch.add_column(sa.Column("gradient", sa.JSON(), nullable=True))
    with op.batch_alter_table("experiments") as batch:
        batch.add_column(sa.Column("replicate", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("barriers_status", sa.String(length=20), nullable=True))
        batch.add_column(sa.Column("barriers_error", sa.Text(), nullable=True))
    with op.batch_alter_table("suites") as batch:
        batch.add_column(sa.Column("seeds", sa.Integer(), server_default="1", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("suites") as batch:
        batch.drop_column("seeds")
    with op.batch_alter_table("experiments") as batch:
        batch.drop_column("barriers_error")
        batch.drop_column("barriers_status")
        batch.drop_column("replicate")
    with op.batch_alter_table("snapshots") as batch:
        batch.drop_column("gradient")

"""Uploaded experiments: the experiment's source and parameter layout; seeds optional on runs.

Revision ID: b8e2f41c6a07
Revises: a7c3e19b5d42
Create Date: 2026-11-28 18:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b8e2f41c6a07"
down_revision: str | Sequence[str] | None = "a7c3e19b5d42"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("experiments") as batch:
        batch.add_column(
            sa.Column("source", sa.String(length=20), server_default="train", nullable=False)
        )
        batch.add_column(sa.Column("layout", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("layout_sha256", sa.String(length=64), nullable=True))
    with op.batch_alter_table("runs") as batch:
        batch.alter_column("init_seed", existing_type=sa.BigInteger(), nullable=True)
        batch.alter_column("data_seed", existing_type=sa.BigInteger(), nullable=True)
        batch.alter_column("final_epoch", existing_type=sa.Integer(), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM experiments WHERE source = 'upload'")
    with op.batch_alter_table("runs") as batch:
        batch.alter_column("final_epoch", existing_type=sa.Integer(), nullable=False)
        batch.alter_column("data_seed", existing_type=sa.BigInteger(), nullable=False)
        batch.alter_column("init_seed", existing_type=sa.BigInteger(), nullable=False)
    with op.batch_alter_table("experiments") as batch:
        batch.drop_column("layout_sha256")
        batch.drop_column("layout")
        batch.drop_column("source")

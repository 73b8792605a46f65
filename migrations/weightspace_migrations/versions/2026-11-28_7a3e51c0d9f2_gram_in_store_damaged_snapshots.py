"""Gram matrices move to the object store (``.npy``, extended incrementally); damaged snapshots.

Revision ID: 7a3e51c0d9f2
Revises: 5c1d2a7e9b40
Create Date: 2026-11-28 18:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7a3e51c0d9f2"
down_revision: str | Sequence[str] | None = "5c1d2a7e9b40"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_table("gram_cache")
    with op.batch_alter_table("snapshots") as batch:
        batch.add_column(sa.Column("damaged", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("snapshots") as batch:
        batch.drop_column("damaged")
    op.create_table(
        "gram_cache",
        sa.Column("experiment_id", sa.Uuid(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("snapshots", sa.Integer(), nullable=False),
        sa.Column("gram", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name=op.f("fk_gram_cache_experiment_id_experiments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("experiment_id", name=op.f("pk_gram_cache")),
    )

"""The worker registry: each live worker's queues, device and data sets, renewed by heartbeats.

Revision ID: d5e7a1c3b920
Revises: b8e2f41c6a07
Create Date: 2026-11-28 21:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d5e7a1c3b920"
down_revision: str | Sequence[str] | None = "b8e2f41c6a07"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "workers",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("queues", sa.JSON(), nullable=False),
        sa.Column("device", sa.String(length=20), nullable=False),
        sa.Column("device_name", sa.String(length=200), nullable=False),
        sa.Column("torch_version", sa.String(length=50), nullable=False),
        sa.Column("datasets", sa.JSON(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workers")),
    )
    op.create_index(op.f("ix_workers_seen_at"), "workers", ["seen_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_workers_seen_at"), table_name="workers")
    op.drop_table("workers")

"""Runs record their dropout seeds (apart from the data-order seeds) and the environment of
their latest snapshot (torch version, device, CPU instruction set, threads).

Revision ID: 49bcee8b9132
Revises: a83d7d040b98
Create Date: 2026-11-28 18:16:27.338136
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "49bcee8b9132"
down_revision: str | Sequence[str] | None = "a83d7d040b98"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dropout_seed", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("pretrain_dropout_seed", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("environment", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("environment")
        batch_op.drop_column("pretrain_dropout_seed")
        batch_op.drop_column("dropout_seed")

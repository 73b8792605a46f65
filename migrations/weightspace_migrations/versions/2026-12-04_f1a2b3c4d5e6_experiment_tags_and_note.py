"""Tags and a note on experiments (PATCH /experiments/{id}).

Revision ID: f1a2b3c4d5e6
Revises: 7193f1ca4d48
Create Date: 2026-12-04 05:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "f1a2b3c4d5e6"
down_revision: str | Sequence[str] | None = "7193f1ca4d48"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("experiments") as batch:
        batch.add_column(sa.Column("note", sa.Text(), nullable=True))
    op.create_table(
        "experiment_tags",
        sa.Column("experiment_id", sa.Uuid(), nullable=False),
        sa.Column("tag", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name=op.f("fk_experiment_tags_experiment_id_experiments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("experiment_id", "tag", name=op.f("pk_experiment_tags")),
    )
    op.create_index(op.f("ix_experiment_tags_tag"), "experiment_tags", ["tag"])


def downgrade() -> None:
    op.drop_index(op.f("ix_experiment_tags_tag"), table_name="experiment_tags")
    op.drop_table("experiment_tags")
    with op.batch_alter_table("experiments") as batch:
        batch.drop_column("note")

"""CHECK constraints: each status column (and ``experiments.source``) holds one of its values.

The values are those of ``weightspace.vocabulary`` when this was written, copied so that the
migration stays what it was; a change to a vocabulary needs a migration of its own.

Revision ID: 7193f1ca4d48
Revises: d3a8c61f0e25
Create Date: 2026-12-04 05:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "7193f1ca4d48"
down_revision: str | Sequence[str] | None = "d3a8c61f0e25"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
#: Table -> column -> the values it may hold.
CHECKS: dict[str, dict[str, tuple[str, ...]]] = {
    "suites": {"report_status": ("pending", "building", "ready", "failed")},
    "experiments": {"status": STATUSES, "source": ("train", "upload")},
    "runs": {"status": STATUSES},
    "cached_jobs": {"status": ("queued", "joining", "ready", "failed")},
}


def upgrade() -> None:
    for table, columns in CHECKS.items():
        with op.batch_alter_table(table) as batch:
            for column, values in columns.items():
                listed = ", ".join(f"'{value}'" for value in values)
                batch.create_check_constraint(
                    op.f(f"ck_{table}_{column}"), f"{column} IN ({listed})"
                )


def downgrade() -> None:
    for table, columns in CHECKS.items():
        with op.batch_alter_table(table) as batch:
            for column in columns:
                batch.drop_constraint(op.f(f"ck_{table}_{column}"), type_="check")

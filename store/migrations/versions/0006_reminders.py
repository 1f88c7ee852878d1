"""overdue reminders

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 12:40:00

Each placement records when its last overdue reminder was posted (`reminded_at`, kept beside
the `reminded_at` of its document); `overdue_digests` records when each owner team's digest was
last pushed, so it goes out at most once per interval whichever worker sends it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("placements") as batch:
        batch.add_column(sa.Column("reminded_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "overdue_digests",
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("owner"),
    )


def downgrade() -> None:
    op.drop_table("overdue_digests")
    with op.batch_alter_table("placements") as batch:
        batch.drop_column("reminded_at")

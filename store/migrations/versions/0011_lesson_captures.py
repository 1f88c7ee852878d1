"""lesson captures

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-10 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "lesson_captures",
        sa.Column("lesson_id", sa.String(length=200), nullable=False),
        sa.Column("source_ref", sa.String(length=300), nullable=False),
        sa.Column("doc", sa.JSON(), nullable=False),
        sa.Column("restricted", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("lesson_id"),
    )
    op.create_index("ix_lesson_captures_source_ref", "lesson_captures", ["source_ref"])


def downgrade() -> None:
    op.drop_index("ix_lesson_captures_source_ref", table_name="lesson_captures")
    op.drop_table("lesson_captures")

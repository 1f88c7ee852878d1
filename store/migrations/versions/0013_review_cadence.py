"""review cadence

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 19:20:00

Team settings from the team map (the tracker a team's review-cadence issue goes to), each owner
team's cadence issue with the claim a running cadence holds on it, and the read marks of
lessons' feedback.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "team_settings",
        sa.Column("team", sa.String(length=200), nullable=False),
        sa.Column("doc", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("team"),
    )
    op.create_table(
        "cadence_issues",
        sa.Column("team", sa.String(length=200), nullable=False),
        sa.Column("system", sa.String(length=10), nullable=True),
        sa.Column("issue_ref", sa.String(length=320), nullable=True),
        sa.Column("url", sa.String(length=2000), nullable=True),
        sa.Column("digest", sa.String(length=40), nullable=True),
        sa.Column("claim_token", sa.String(length=40), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("team"),
    )
    op.create_table(
        "feedback_reads",
        sa.Column("lesson_id", sa.String(length=200), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("read_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("lesson_id"),
    )


def downgrade() -> None:
    op.drop_table("feedback_reads")
    op.drop_table("cadence_issues")
    op.drop_table("team_settings")

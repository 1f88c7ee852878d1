"""team members

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 09:00:00

The team → members map: who a team's training goes to (one row per team and person), with each
person's name, email, LMS user ids and logins.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "team_members",
        sa.Column("team", sa.String(length=200), nullable=False),
        sa.Column("person", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("doc", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("team", "person"),
    )
    op.create_index("ix_team_members_email", "team_members", ["email"])


def downgrade() -> None:
    op.drop_index("ix_team_members_email", table_name="team_members")
    op.drop_table("team_members")

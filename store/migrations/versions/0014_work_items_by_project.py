"""work items by project

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 22:50:00

An index of work items by system and project: the repositories a template lesson can reach are
the GitHub projects Cairn has seen, and a repository's first work item is found by it.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_work_items_system_project", "work_items", ["system", "project"])


def downgrade() -> None:
    op.drop_index("ix_work_items_system_project", table_name="work_items")

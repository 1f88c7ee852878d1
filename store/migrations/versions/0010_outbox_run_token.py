"""outbox run token

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 16:30:00

A delivery that runs an outbox message writes its own token into `run_token` and keeps its
lease renewed while it runs; another delivery of the same message does not start while that
token's lease lasts, and a run whose token was replaced records nothing.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("run_token", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("run_token")

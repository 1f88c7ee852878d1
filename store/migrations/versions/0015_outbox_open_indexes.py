"""outbox open-message indexes

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 14:50:00

Two partial indexes over the outbox's open (pending or leased) messages, for the claim: one in
id order to walk them oldest first, one by key to find a key's oldest open message. Done
messages, most of the table, are in neither, so the claim's cost does not grow with history.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from store.tables import OUTBOX_OPEN

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for name, columns in (("ix_outbox_open", ["id"]), ("ix_outbox_open_key", ["key", "id"])):
        op.create_index(
            name,
            "outbox",
            columns,
            postgresql_where=sa.text(OUTBOX_OPEN),
            sqlite_where=sa.text(OUTBOX_OPEN),
        )


def downgrade() -> None:
    op.drop_index("ix_outbox_open_key", table_name="outbox")
    op.drop_index("ix_outbox_open", table_name="outbox")

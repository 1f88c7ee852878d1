"""audit log as a hash chain

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04 11:00:00

Existing entries are chained in id order, so an upgraded database verifies from its first row.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from store.audit import GENESIS, entry_hash

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_audit = sa.table(
    "audit_log",
    sa.column("id", sa.BigInteger()),
    sa.column("at", sa.DateTime(timezone=True)),
    sa.column("actor", sa.String()),
    sa.column("action", sa.String()),
    sa.column("subject", sa.String()),
    sa.column("details", sa.JSON()),
    sa.column("seq", sa.BigInteger()),
    sa.column("prev_hash", sa.String()),
    sa.column("hash", sa.String()),
)


def upgrade() -> None:
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("seq", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("hash", sa.String(length=64), nullable=True))
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    from store.tables import UtcDateTime  # the stored form of `at`, as the app reads it

    conn = op.get_bind()
    reader = UtcDateTime()
    prev, seq = GENESIS, 0
    rows = conn.execute(
        sa.select(
            _audit.c.id,
            _audit.c.at,
            _audit.c.actor,
            _audit.c.action,
            _audit.c.subject,
            _audit.c.details,
        ).order_by(_audit.c.id)
    ).all()
    for row in rows:
        seq += 1
        at = reader.process_result_value(row.at, conn.dialect)
        assert at is not None
        digest = entry_hash(prev, seq, at, row.actor, row.action, row.subject, row.details)
        conn.execute(
            _audit.update()
            .where(_audit.c.id == row.id)
            .values(seq=seq, prev_hash=prev, hash=digest)
        )
        prev = digest
    conn.execute(
        sa.text("INSERT INTO audit_head (id, seq, hash) VALUES (1, :seq, :hash)"),
        {"seq": seq, "hash": prev},
    )
    with op.batch_alter_table("audit_log") as batch:
        batch.alter_column("seq", existing_type=sa.BigInteger(), nullable=False)
        batch.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=False)
        batch.alter_column("hash", existing_type=sa.String(length=64), nullable=False)
        batch.create_unique_constraint("uq_audit_log_seq", ["seq"])


def downgrade() -> None:
    op.drop_table("audit_head")
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_constraint("uq_audit_log_seq", type_="unique")
        batch.drop_column("hash")
        batch.drop_column("prev_hash")
        batch.drop_column("seq")

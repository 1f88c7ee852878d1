"""report rollups

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 12:40:00

The reports aggregate in SQL: each placement keeps its tier (before any due date passes), ISO
week, times to acknowledge and verify, dismissal reason, checkbox-theatre flags, and its work
item's team and project as columns. Existing rows are filled in here from their documents and
signals, a batch of work items at a time. `held_back` records why the route did not place a
mandated lesson it selected (suppressed, or over the fatigue budget).
"""

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_REFS_PER_BATCH = 500
_AUTOVACUUM = "autovacuum_vacuum_scale_factor"
_INSERTS = "autovacuum_vacuum_insert_scale_factor"
_NOT_NULL = {"rule_id": 200, "mandate": 20, "week": 8, "tier": 12}


def upgrade() -> None:
    with op.batch_alter_table("placements") as batch:
        batch.add_column(sa.Column("team", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("project", sa.String(length=200), nullable=True))
        for name, length in _NOT_NULL.items():
            batch.add_column(sa.Column(name, sa.String(length=length), nullable=True))
        batch.add_column(sa.Column("due_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("acknowledged_after", sa.Float(), nullable=True))
        batch.add_column(sa.Column("verified_after", sa.Float(), nullable=True))
        batch.add_column(sa.Column("dismissal_reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("theatre", sa.String(length=60), nullable=True))
    op.create_table(
        "held_back",
        sa.Column("work_item_ref", sa.String(length=320), nullable=False),
        sa.Column("lesson_id", sa.String(length=200), nullable=False),
        sa.Column("team", sa.String(length=200), nullable=True),
        sa.Column("reason", sa.String(length=12), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("work_item_ref", "lesson_id"),
    )
    with op.batch_alter_table("held_back") as batch:
        batch.create_index("ix_held_back_at", ["at"], unique=False)
    _fill_placements()
    with op.batch_alter_table("placements") as batch:
        for name, length in _NOT_NULL.items():
            batch.alter_column(name, existing_type=sa.String(length=length), nullable=False)
        batch.create_index("ix_placements_created_at", ["created_at"], unique=False)
        batch.create_index("ix_placements_team_created_at", ["team", "created_at"], unique=False)
        batch.create_index(
            "ix_placements_cells",
            ["lesson_id", "team", "created_at", "id"],
            unique=False,
            postgresql_include=["tier", "due_at", "mandate"],
        )
    if op.get_bind().dialect.name == "postgresql":
        # The matrix reads ix_placements_cells without visiting the table only where the
        # visibility map is current: vacuum after 1% of the rows changed, not the default 20%.
        op.execute(f"ALTER TABLE placements SET ({_AUTOVACUUM} = 0.01, {_INSERTS} = 0.01)")


def _fill_placements() -> None:
    from core.adoption import theatre_flags
    from core.placement import Placement, Signal
    from store.ledger import report_columns, theatre_text
    from store.tables import UtcDateTime

    conn = op.get_bind()
    columns: list[Any] = [
        sa.column("id", sa.String()),
        sa.column("work_item_ref", sa.String()),
        sa.column("doc", sa.JSON()),
        sa.column("due_at", UtcDateTime()),
        *(sa.column(name, sa.String()) for name in _NOT_NULL),
        sa.column("acknowledged_after", sa.Float()),
        sa.column("verified_after", sa.Float()),
        sa.column("dismissal_reason", sa.Text()),
        sa.column("theatre", sa.String()),
        sa.column("team", sa.String()),
        sa.column("project", sa.String()),
    ]
    placements = sa.table("placements", *columns)
    items = sa.table(
        "work_items",
        sa.column("ref", sa.String()),
        sa.column("project", sa.String()),
        sa.column("doc", sa.JSON()),
    )
    signals = sa.table(
        "signals",
        sa.column("id", sa.String()),
        sa.column("placement_id", sa.String()),
        sa.column("at", UtcDateTime()),
        sa.column("doc", sa.JSON()),
    )
    refs = list(
        conn.scalars(
            sa.select(placements.c.work_item_ref).distinct().order_by(placements.c.work_item_ref)
        )
    )
    update = (
        placements.update()
        .where(placements.c.id == sa.bindparam("b_id"))
        .values({c.name: sa.bindparam(c.name) for c in columns[3:]})
    )
    for start in range(0, len(refs), _REFS_PER_BATCH):
        chunk = refs[start : start + _REFS_PER_BATCH]
        found = [
            Placement.model_validate(doc, strict=False)
            for doc in conn.scalars(
                sa.select(placements.c.doc).where(placements.c.work_item_ref.in_(chunk))
            )
        ]
        by_id: dict[str, list[Signal]] = defaultdict(list)
        ids = [p.id for p in found]
        for at in range(0, len(ids), _REFS_PER_BATCH):
            for doc in conn.scalars(
                sa.select(signals.c.doc)
                .where(signals.c.placement_id.in_(ids[at : at + _REFS_PER_BATCH]))
                .order_by(signals.c.at, signals.c.id)
            ):
                signal = Signal.model_validate(doc, strict=False)
                by_id[signal.placement_id].append(signal)
        by_ref: dict[str, list[Placement]] = defaultdict(list)
        for placement in found:
            by_ref[placement.work_item_ref].append(placement)
        work = {
            ref: (doc.get("team") if isinstance(doc, dict) else None, project)
            for ref, project, doc in conn.execute(
                sa.select(items.c.ref, items.c.project, items.c.doc).where(items.c.ref.in_(chunk))
            )
        }
        rows = []
        for ref, group in by_ref.items():
            flags = theatre_flags((p, by_id[p.id]) for p in group)
            team, project = work.get(ref, (None, None))
            for p in group:
                values = report_columns(p, by_id[p.id])
                values["theatre"] = theatre_text(flags.get(p.id, ()))
                values["team"] = team if isinstance(team, str) else None
                values["project"] = project
                rows.append({"b_id": p.id, **values})
        if rows:
            conn.execute(update, rows)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE placements RESET ({_AUTOVACUUM}, {_INSERTS})")
    with op.batch_alter_table("placements") as batch:
        batch.drop_index("ix_placements_cells")
        batch.drop_index("ix_placements_team_created_at")
        batch.drop_index("ix_placements_created_at")
        for name in (
            "theatre",
            "dismissal_reason",
            "verified_after",
            "acknowledged_after",
            "due_at",
            *_NOT_NULL,
            "project",
            "team",
        ):
            batch.drop_column(name)
    with op.batch_alter_table("held_back") as batch:
        batch.drop_index("ix_held_back_at")
    op.drop_table("held_back")

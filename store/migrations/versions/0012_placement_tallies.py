"""placement tallies

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 16:40:00

Placements counted per day, rule and tier, and per day and lesson, for the dashboard's trend,
per-rule precision and lessons placed in a period (store/tallies.py); an index on `due_at` for
the day's overdue correction; and a `review_by` facet per lesson for the review cadence.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _day(column: str) -> str:
    if op.get_bind().dialect.name == "postgresql":
        return f"CAST(timezone('UTC', {column}) AS DATE)"
    return f"date({column})"


def upgrade() -> None:
    op.create_table(
        "placement_tallies",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("rule_id", sa.String(length=200), nullable=False),
        sa.Column("tier", sa.String(length=12), nullable=False),
        sa.Column("due_day", sa.Date(), nullable=True),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_placement_tallies_day", "placement_tallies", ["day"])
    op.create_table(
        "lesson_days",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("lesson_id", sa.String(length=200), nullable=False),
        sa.Column("mandate", sa.String(length=20), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_lesson_days_day", "lesson_days", ["day"])
    op.create_index("ix_placements_due_at", "placements", ["due_at"])
    # The fragments are fixed SQL (the day of a column in UTC), never input.
    day, due = _day("created_at"), _day("due_at")
    due_day = f"CASE WHEN tier = 'delivered' THEN {due} END"
    op.execute(
        "INSERT INTO placement_tallies (day, rule_id, tier, due_day, n) "  # noqa: S608
        f"SELECT {day}, rule_id, tier, {due_day}, count(*) FROM placements GROUP BY 1, 2, 3, 4"
    )
    op.execute(
        "INSERT INTO lesson_days (day, lesson_id, mandate, n) "  # noqa: S608
        f"SELECT {day}, lesson_id, mandate, count(*) FROM placements GROUP BY 1, 2, 3"
    )
    lessons = sa.table("lessons", sa.column("id", sa.String), sa.column("doc", sa.JSON))
    facets = sa.table(
        "lesson_facets",
        sa.column("lesson_id", sa.String),
        sa.column("facet", sa.String),
        sa.column("value", sa.String),
    )
    rows = [
        {"lesson_id": lesson_id, "facet": "review_by", "value": doc["review_by"]}
        for lesson_id, doc in op.get_bind().execute(sa.select(lessons.c.id, lessons.c.doc))
        if isinstance(doc, dict) and isinstance(doc.get("review_by"), str)
    ]
    if rows:
        op.bulk_insert(facets, rows)


def downgrade() -> None:
    op.execute("DELETE FROM lesson_facets WHERE facet = 'review_by'")
    op.drop_index("ix_placements_due_at", table_name="placements")
    op.drop_index("ix_lesson_days_day", table_name="lesson_days")
    op.drop_table("lesson_days")
    op.drop_index("ix_placement_tallies_day", table_name="placement_tallies")
    op.drop_table("placement_tallies")

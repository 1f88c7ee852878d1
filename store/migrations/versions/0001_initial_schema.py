"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-22 04:22:49.240685
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Full-text search objects exist on one dialect each, so they stay out of the table metadata;
# store.search.UNMANAGED names them for the schema drift check. The document expression must
# stay identical to store.search's, or PostgreSQL will not use the index.
_PG_DOCUMENT = (
    "setweight(to_tsvector('english'::regconfig, title), 'A') || "
    "setweight(to_tsvector('english'::regconfig, scope), 'B') || "
    "setweight(to_tsvector('english'::regconfig, body), 'D')"
)
_SQLITE_SEARCH = (
    # remove_diacritics 0: PostgreSQL's english configuration keeps accents too.
    "CREATE VIRTUAL TABLE lesson_search_fts USING fts5(title, scope, body, "
    "content='lesson_search', content_rowid='id', "
    "tokenize='porter unicode61 remove_diacritics 0')",
    # The external-content triggers from the FTS5 documentation.
    "CREATE TRIGGER lesson_search_ai AFTER INSERT ON lesson_search BEGIN "
    "INSERT INTO lesson_search_fts(rowid, title, scope, body) "
    "VALUES (new.id, new.title, new.scope, new.body); END",
    "CREATE TRIGGER lesson_search_ad AFTER DELETE ON lesson_search BEGIN "
    "INSERT INTO lesson_search_fts(lesson_search_fts, rowid, title, scope, body) "
    "VALUES ('delete', old.id, old.title, old.scope, old.body); END",
    "CREATE TRIGGER lesson_search_au AFTER UPDATE ON lesson_search BEGIN "
    "INSERT INTO lesson_search_fts(lesson_search_fts, rowid, title, scope, body) "
    "VALUES ('delete', old.id, old.title, old.scope, old.body); "
    "INSERT INTO lesson_search_fts(rowid, title, scope, body) "
    "VALUES (new.id, new.title, new.scope, new.body); END",
)


def _create_search_index() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"CREATE INDEX ix_lesson_search_document ON lesson_search USING gin (({_PG_DOCUMENT}))"
        )
    else:
        for statement in _SQLITE_SEARCH:
            op.execute(statement)


def _drop_search_index() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_lesson_search_document")
    else:
        for trigger in ("lesson_search_ai", "lesson_search_ad", "lesson_search_au"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS lesson_search_fts")


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "counters",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )

    op.create_table(
        "audit_log",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=60), nullable=False),
        sa.Column("subject", sa.String(length=320), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_log_action"), ["action"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_log_subject"), ["subject"], unique=False)

    op.create_table(
        "inbox",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("delivery_key", sa.String(length=300), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source", "delivery_key", name="uq_inbox_delivery"),
    )
    op.create_table(
        "incidents",
        sa.Column("ref", sa.String(length=300), nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("severity_rank", sa.Integer(), nullable=False),
        sa.Column("doc", sa.JSON(), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("ref"),
    )
    op.create_table(
        "lesson_versions",
        sa.Column("lesson_id", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("doc", sa.JSON(), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("lesson_id", "version"),
    )
    op.create_table(
        "lessons",
        sa.Column("id", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("published_version", sa.Integer(), nullable=True),
        sa.Column("doc", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("lessons", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lessons_status"), ["status"], unique=False)

    op.create_table(
        "lesson_search",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("lesson_id", sa.String(length=200), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("lesson_id"),
    )
    _create_search_index()

    op.create_table(
        "lesson_facets",
        sa.Column("lesson_id", sa.String(length=200), nullable=False),
        sa.Column("facet", sa.String(length=12), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("lesson_id", "facet", "value"),
    )
    with op.batch_alter_table("lesson_facets", schema=None) as batch_op:
        batch_op.create_index("ix_lesson_facets_value", ["facet", "value"], unique=False)

    op.create_table(
        "recurrences",
        sa.Column("incident_ref", sa.String(length=300), nullable=False),
        sa.Column("lesson_id", sa.String(length=200), nullable=False),
        sa.Column("lesson_version", sa.Integer(), nullable=False),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("doc", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("incident_ref", "lesson_id"),
    )
    with op.batch_alter_table("recurrences", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_recurrences_lesson_id"), ["lesson_id"], unique=False)

    op.create_table(
        "outbox",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("topic", sa.String(length=60), nullable=False),
        sa.Column("key", sa.String(length=400), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("available_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("leased_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_due", ["status", "available_at"], unique=False)
        batch_op.create_index("ix_outbox_key", ["key", "status"], unique=False)

    op.create_table(
        "placements",
        sa.Column("id", sa.String(length=200), nullable=False),
        sa.Column("effect_id", sa.String(length=600), nullable=False),
        sa.Column("lesson_id", sa.String(length=200), nullable=False),
        sa.Column("lesson_version", sa.Integer(), nullable=False),
        sa.Column("work_item_ref", sa.String(length=320), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("doc", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("effect_id"),
    )
    with op.batch_alter_table("placements", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_placements_lesson_id"), ["lesson_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_placements_work_item_ref"), ["work_item_ref"], unique=False
        )

    op.create_table(
        "signals",
        sa.Column("id", sa.String(length=200), nullable=False),
        sa.Column("placement_id", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("doc", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("signals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_signals_placement_id"), ["placement_id"], unique=False)

    op.create_table(
        "work_item_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("ref", sa.String(length=320), nullable=False),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("doc", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("work_item_events", schema=None) as batch_op:
        batch_op.create_index("ix_work_item_events_at", ["observed_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_work_item_events_ref"), ["ref"], unique=False)

    op.create_table(
        "work_items",
        sa.Column("ref", sa.String(length=320), nullable=False),
        sa.Column("system", sa.String(length=10), nullable=False),
        sa.Column("project", sa.String(length=200), nullable=False),
        sa.Column("doc", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("ref"),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("counters")

    op.drop_table("work_items")
    with op.batch_alter_table("work_item_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_work_item_events_ref"))
        batch_op.drop_index("ix_work_item_events_at")

    op.drop_table("work_item_events")
    with op.batch_alter_table("signals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_signals_placement_id"))

    op.drop_table("signals")
    with op.batch_alter_table("placements", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_placements_work_item_ref"))
        batch_op.drop_index(batch_op.f("ix_placements_lesson_id"))

    op.drop_table("placements")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_key")
        batch_op.drop_index("ix_outbox_due")

    with op.batch_alter_table("recurrences", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_recurrences_lesson_id"))

    op.drop_table("recurrences")
    with op.batch_alter_table("lesson_facets", schema=None) as batch_op:
        batch_op.drop_index("ix_lesson_facets_value")

    op.drop_table("lesson_facets")
    _drop_search_index()
    op.drop_table("lesson_search")
    op.drop_table("outbox")
    with op.batch_alter_table("lessons", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lessons_status"))

    op.drop_table("lessons")
    op.drop_table("lesson_versions")
    op.drop_table("incidents")
    op.drop_table("inbox")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_log_subject"))
        batch_op.drop_index(batch_op.f("ix_audit_log_action"))

    op.drop_table("audit_log")

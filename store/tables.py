"""Table definitions: queryable fields as columns, the full model as a JSON document."""

from datetime import UTC, date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Dialect,
    Float,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator[datetime]):
    """Timestamps go in as UTC and come out timezone-aware, on SQLite as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        # SQLite keeps text; dropping the offset keeps every stored value in one sortable form.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base; every `datetime` column is a UTC-aware timestamp."""

    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UtcDateTime(), dict[str, Any]: JSON}


def flushed(session: Session) -> Connection:
    """The session's connection for a statement run without the ORM, once the ORM has written
    what it holds (as an ORM statement would autoflush), so the statement sees and orders
    after every earlier write of the transaction."""
    if session.autoflush:
        session.flush()  # nothing to do (and next to no cost) when nothing is pending
    return session.connection()


def core_table(row: type[Base]) -> Table:
    """The Core table a mapped class is stored in, for the hot path's statements built once
    and run without the ORM (a statement built and run through the ORM costs several times
    what the database takes to run it)."""
    table = row.__table__
    assert isinstance(table, Table)
    return table


class InboxRow(Base):
    """One accepted webhook delivery, verbatim, keyed by the sender's delivery id."""

    __tablename__ = "inbox"
    __table_args__ = (UniqueConstraint("source", "delivery_key", name="uq_inbox_delivery"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(40))
    delivery_key: Mapped[str] = mapped_column(String(300))
    received_at: Mapped[datetime]
    headers: Mapped[dict[str, Any]]
    body: Mapped[bytes] = mapped_column(LargeBinary)
    processed_at: Mapped[datetime | None]


OUTBOX_OPEN_STATUSES = ("pending", "leased")
"""The statuses of outbox messages not yet settled (`store.outbox.MessageStatus`)."""
OUTBOX_OPEN = f"status IN {OUTBOX_OPEN_STATUSES!r}"
"""The outbox rows not yet settled, as SQL with literal values: the partial indexes below hold
only these rows, and a query can use them only when its own condition says the same in
literals (a bound parameter proves nothing to SQLite's planner, nor to PostgreSQL's in a
generic plan)."""


def _open_only() -> dict[str, Any]:
    return {"postgresql_where": text(OUTBOX_OPEN), "sqlite_where": text(OUTBOX_OPEN)}


class OutboxRow(Base):
    """A unit of pipeline work; the durable queue in embedded mode, the relay's source otherwise."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "status", "available_at"),
        Index("ix_outbox_key", "key", "status"),
        # The claim walks the open messages in id order and finds each one's key's oldest open
        # message; done messages (most of the table, and growing) are in neither index.
        Index("ix_outbox_open", "id", **_open_only()),
        Index("ix_outbox_open_key", "key", "id", **_open_only()),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    topic: Mapped[str] = mapped_column(String(60))
    key: Mapped[str] = mapped_column(String(400))
    payload: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(12))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    available_at: Mapped[datetime]
    leased_until: Mapped[datetime | None]
    done_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    # The delivery running this message, while `leased_until` (which it renews) lasts.
    run_token: Mapped[str | None] = mapped_column(String(32))


class IncidentRow(Base):
    """Latest known state of an incident."""

    __tablename__ = "incidents"

    ref: Mapped[str] = mapped_column(String(300), primary_key=True)
    source: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20))
    severity_rank: Mapped[int]
    doc: Mapped[dict[str, Any]]
    first_seen_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class WorkItemRow(Base):
    """Latest known state of a work item."""

    __tablename__ = "work_items"
    __table_args__ = (Index("ix_work_items_system_project", "system", "project"),)

    ref: Mapped[str] = mapped_column(String(320), primary_key=True)
    system: Mapped[str] = mapped_column(String(10))
    project: Mapped[str] = mapped_column(String(200))
    doc: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime]


class WorkItemEventRow(Base):
    """Every observed state of a work item, kept for rule backtests."""

    __tablename__ = "work_item_events"
    __table_args__ = (Index("ix_work_item_events_at", "observed_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ref: Mapped[str] = mapped_column(String(320), index=True)
    observed_at: Mapped[datetime]
    doc: Mapped[dict[str, Any]]


class LessonRow(Base):
    """The current state of a lesson (its working copy and lifecycle status)."""

    __tablename__ = "lessons"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    status: Mapped[str] = mapped_column(String(12), index=True)
    owner: Mapped[str] = mapped_column(String(200))
    version: Mapped[int]
    published_version: Mapped[int | None]
    doc: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime]


class LessonVersionRow(Base):
    """An immutable published version of a lesson."""

    __tablename__ = "lesson_versions"

    lesson_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    doc: Mapped[dict[str, Any]]
    published_at: Mapped[datetime]


class LessonSearchRow(Base):
    """A lesson's searchable text; FTS5 (SQLite) or a GIN index (PostgreSQL) covers it.

    The integer id is the FTS5 rowid: a lesson id is text, and SQLite may renumber implicit rowids.
    """

    __tablename__ = "lesson_search"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    lesson_id: Mapped[str] = mapped_column(String(200), unique=True)
    title: Mapped[str] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)


class LessonFacetRow(Base):
    """One facet value of a lesson (status, mandate, form, owner, each tag, service, component)."""

    __tablename__ = "lesson_facets"
    __table_args__ = (Index("ix_lesson_facets_value", "facet", "value"),)

    lesson_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    facet: Mapped[str] = mapped_column(String(12), primary_key=True)
    value: Mapped[str] = mapped_column(String(200), primary_key=True)


class RecurrenceRow(Base):
    """A later incident where a published lesson applied: one per (incident, lesson)."""

    __tablename__ = "recurrences"

    incident_ref: Mapped[str] = mapped_column(String(300), primary_key=True)
    lesson_id: Mapped[str] = mapped_column(String(200), primary_key=True, index=True)
    lesson_version: Mapped[int]
    detected_at: Mapped[datetime]
    doc: Mapped[dict[str, Any]]


class PlacementRow(Base):
    """A lesson embedded in a work item; `effect_id` makes each side effect happen once.

    The columns after `updated_at` are what the reports aggregate in SQL, kept current in the
    transaction that changes the state, the signals or the work item (store/ledger.py).
    """

    __tablename__ = "placements"
    __table_args__ = (
        Index("ix_placements_created_at", "created_at"),
        Index("ix_placements_team_created_at", "team", "created_at"),
        # Delivered placements falling due today (the tallies' one exact correction).
        Index("ix_placements_due_at", "due_at"),
        # The compliance matrix reads its cells in this order, without sorting a quarter.
        Index(
            "ix_placements_cells",
            "lesson_id",
            "team",
            "created_at",
            "id",
            postgresql_include=["tier", "due_at", "mandate"],
        ),
    )

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    effect_id: Mapped[str] = mapped_column(String(600), unique=True)
    lesson_id: Mapped[str] = mapped_column(String(200), index=True)
    lesson_version: Mapped[int]
    work_item_ref: Mapped[str] = mapped_column(String(320), index=True)
    state: Mapped[str] = mapped_column(String(12))
    reminded_at: Mapped[datetime | None]
    """When the last overdue reminder was posted (the doc's `reminded_at`, for the sweep)."""
    doc: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    team: Mapped[str | None] = mapped_column(String(200))
    """The work item's team (None when it has none, or was never recorded)."""
    project: Mapped[str | None] = mapped_column(String(200))
    """The work item's repository or project (None when it was never recorded)."""
    rule_id: Mapped[str] = mapped_column(String(200))
    mandate: Mapped[str] = mapped_column(String(20))
    due_at: Mapped[datetime | None]
    week: Mapped[str] = mapped_column(String(8))
    """The ISO week it was placed in, `2026-W45`."""
    tier: Mapped[str] = mapped_column(String(12))
    """The adoption tier before any due date passes: `delivered` turns `overdue` after `due_at`."""
    acknowledged_after: Mapped[float | None] = mapped_column(Float)
    """Seconds from placement to the first tick or sub-task done."""
    verified_after: Mapped[float | None] = mapped_column(Float)
    """Seconds from placement to verification, when the tier is `verified`."""
    dismissal_reason: Mapped[str | None] = mapped_column(Text)
    theatre: Mapped[str | None] = mapped_column(String(60))
    """Checkbox-theatre flags, comma-separated in name order; None for none."""


class PlacementTallyRow(Base):
    """Placements counted per UTC day placed, rule and tier at rest (and, for `delivered`, the
    UTC day it falls due): the dashboard's trend and per-rule figures read these, not a
    quarter of placements. Writers append deltas (+1/-1) beside the placement write and never
    update a shared row; the ledger sweep folds them into one row per key (store/tallies.py).
    """

    __tablename__ = "placement_tallies"
    __table_args__ = (Index("ix_placement_tallies_day", "day"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    day: Mapped[date]
    rule_id: Mapped[str] = mapped_column(String(200))
    tier: Mapped[str] = mapped_column(String(12))
    due_day: Mapped[date | None]
    n: Mapped[int]


class LessonDayRow(Base):
    """Placements of one lesson per UTC day placed and mandate (appended and folded like the
    tallies): which lessons were placed, or placed as mandated, in a period, without reading
    the period's placements."""

    __tablename__ = "lesson_days"
    __table_args__ = (Index("ix_lesson_days_day", "day"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    day: Mapped[date]
    lesson_id: Mapped[str] = mapped_column(String(200))
    mandate: Mapped[str] = mapped_column(String(20))
    """The mandate the placements carry (a rule's can make a lesson mandated)."""
    n: Mapped[int]


class HeldBackRow(Base):
    """A mandated lesson the route selected for a work item and did not place, and why: the
    last time it did so (compliance names it in a `not reached` cell)."""

    __tablename__ = "held_back"
    __table_args__ = (Index("ix_held_back_at", "at"),)

    work_item_ref: Mapped[str] = mapped_column(String(320), primary_key=True)
    lesson_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    team: Mapped[str | None] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(String(12))
    """`suppressed` (a rule or a revision flag held it back) or `budget` (the fatigue budget)."""
    detail: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime]


class SignalRow(Base):
    """A back-channel event about a placement."""

    __tablename__ = "signals"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    placement_id: Mapped[str] = mapped_column(String(200), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    at: Mapped[datetime]
    doc: Mapped[dict[str, Any]]


class AuditRow(Base):
    """Append-only record of what Cairn did and why."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(60), index=True)
    subject: Mapped[str] = mapped_column(String(320), index=True)
    details: Mapped[dict[str, Any]]
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHeadRow(Base):
    """The audit chain's newest link: one row, locked by every append so the chain never forks."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


class CounterRow(Base):
    """Monotonic counters, e.g. a revision of the lesson catalogue for cache keys."""

    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)


class ApiTokenRow(Base):
    """An API token: only the SHA-256 of its secret is kept, found by its public id."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(24), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(20))
    teams: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class WaiverRow(Base):
    """An exemption of a team (or one work item) from a mandated lesson, with who approved it."""

    __tablename__ = "waivers"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    lesson_id: Mapped[str] = mapped_column(String(200), index=True)
    team: Mapped[str] = mapped_column(String(200))
    work_item_ref: Mapped[str | None] = mapped_column(String(320))
    reason: Mapped[str] = mapped_column(Text)
    approved_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class FlagRow(Base):
    """A rule or lesson flagged for revision because its placements are rarely worth it."""

    __tablename__ = "revision_flags"

    kind: Mapped[str] = mapped_column(String(10), primary_key=True)
    subject: Mapped[str] = mapped_column(String(200), primary_key=True)
    flagged_at: Mapped[datetime]
    doc: Mapped[dict[str, Any]]
    cleared_at: Mapped[datetime | None]
    cleared_by: Mapped[str | None] = mapped_column(String(200))


class DigestRow(Base):
    """When an owner team's overdue digest was last pushed: at most one per interval."""

    __tablename__ = "overdue_digests"

    owner: Mapped[str] = mapped_column(String(200), primary_key=True)
    sent_at: Mapped[datetime]


class TeamMemberRow(Base):
    """A person in a team (one row per pair); the LMS user ids and logins are in `doc`."""

    __tablename__ = "team_members"

    team: Mapped[str] = mapped_column(String(200), primary_key=True)
    person: Mapped[str] = mapped_column(String(200), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254), index=True)
    doc: Mapped[dict[str, Any]]
    """`{"lms_ids": {lms: user id}, "logins": {system: login}}`."""
    updated_at: Mapped[datetime]


class CursorRow(Base):
    """Where an incremental reader of an outside system stopped (an xAPI statement cursor)."""

    __tablename__ = "sync_cursors"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    doc: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime]


class LessonCaptureRow(Base):
    """Capture and review state of a lesson captured from work: findings and decisions in
    `doc`; the restricted provenance (people, redacted originals) apart in `restricted`."""

    __tablename__ = "lesson_captures"

    lesson_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    source_ref: Mapped[str] = mapped_column(String(300), index=True)
    doc: Mapped[dict[str, Any]]
    restricted: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime]


class TeamSettingRow(Base):
    """A team's settings from the team map (its review-cadence tracker), kept apart from its
    members so a team with no members can still have them."""

    __tablename__ = "team_settings"

    team: Mapped[str] = mapped_column(String(200), primary_key=True)
    doc: Mapped[dict[str, Any]]
    """`{"tracker": {"jira": KEY} | {"github": "owner/repo"}}`."""
    updated_at: Mapped[datetime]


class CadenceIssueRow(Base):
    """An owner team's review-cadence issue, and the claim a running cadence holds on it: the
    team is the key, so two runs can never both open one."""

    __tablename__ = "cadence_issues"

    team: Mapped[str] = mapped_column(String(200), primary_key=True)
    system: Mapped[str | None] = mapped_column(String(10))
    issue_ref: Mapped[str | None] = mapped_column(String(320))
    """`PAY-12` or `owner/repo#7`; None until an issue was opened."""
    url: Mapped[str | None] = mapped_column(String(2000))
    digest: Mapped[str | None] = mapped_column(String(40))
    """The digest of what the issue lists now."""
    claim_token: Mapped[str | None] = mapped_column(String(40))
    claimed_until: Mapped[datetime | None]
    checked_at: Mapped[datetime | None]
    """When a run last compared the issue with what needs review."""
    updated_at: Mapped[datetime]


class FeedbackReadRow(Base):
    """Up to when a lesson's owners have read its feedback (the dismissal reasons)."""

    __tablename__ = "feedback_reads"

    lesson_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    read_at: Mapped[datetime]
    read_by: Mapped[str] = mapped_column(String(200))

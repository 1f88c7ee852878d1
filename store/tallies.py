"""Tallies of the ledger: placements per day, rule and tier, and per day and lesson.

The dashboard's trend, its per-rule precision and the list of lessons placed in a period are
read from these instead of a quarter of placements. They are kept exact in the transaction that
changes a placement: as it commits, the writer appends one delta row per key it changed (+1 for
a placement's new key, -1 for its old one, summed over the transaction) and never updates a
shared counter row, so concurrent writers neither wait for nor deadlock on each other.
`compact` folds the deltas into one row per key; the sums are the same before and after, so
readers never need it to have run.

A `delivered` placement turns `overdue` when its due date passes (`ledger.tier_at`), which no
stored count can follow. The tallies therefore keep the UTC day a delivered placement falls
due: days before today count as overdue, days after as delivered, and today's placements are
split by their exact due time with one indexed query.
"""

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    and_,
    case,
    cast,
    delete,
    event,
    func,
    insert,
    literal,
    select,
)
from sqlalchemy.orm import Session

from core.adoption import Tier, week_of
from store.ledger import Filters
from store.tables import LessonDayRow, PlacementRow, PlacementTallyRow, core_table, flushed

# Written at every commit that placed something: built once, run without the ORM (see
# `store.tables.core_table`).
_ADD_TALLIES = insert(core_table(PlacementTallyRow))
_ADD_LESSON_DAYS = insert(core_table(LessonDayRow))

TallyKey = tuple[date, str, str, date | None]
"""(day placed, rule, tier at rest, day due when delivered with a due date)."""

_DELIVERED = Tier.DELIVERED.value
_OVERDUE = Tier.OVERDUE.value


def day_of(moment: datetime) -> date:
    """The UTC day of a moment."""
    return moment.astimezone(UTC).date()


def start_of(day: date) -> datetime:
    """The first instant of a UTC day."""
    return datetime.combine(day, time.min, tzinfo=UTC)


def key_of(created_at: datetime, rule_id: str, tier: str, due_at: datetime | None) -> TallyKey:
    """The tally a placement row with these report columns counts in."""
    due = day_of(due_at) if tier == _DELIVERED and due_at is not None else None
    return (day_of(created_at), rule_id, tier, due)


def row_key(row: PlacementRow) -> TallyKey:
    """The tally a placement row counts in now."""
    return key_of(row.created_at, row.rule_id, row.tier, row.due_at)


def placed(session: Session, key: TallyKey, lesson_id: str, mandate: str) -> None:
    """Count a new placement in, in the caller's transaction."""
    _pending(session).tallies[key] += 1
    _pending(session).lessons[(key[0], lesson_id, mandate)] += 1


def moved(session: Session, before: TallyKey, after: TallyKey) -> None:
    """Move a placement from one tally to another (its tier or due date changed)."""
    if before != after:
        pending = _pending(session).tallies
        pending[before] -= 1
        pending[after] += 1


@dataclass
class _Deltas:
    """What a transaction changed, summed per key until it commits."""

    tallies: Counter[TallyKey] = field(default_factory=Counter)
    lessons: Counter[tuple[date, str, str]] = field(default_factory=Counter)


_KEY = "cairn.tallies"


def _pending(session: Session) -> _Deltas:
    found = session.info.get(_KEY)
    if found is None:
        found = session.info[_KEY] = _Deltas()
    return found


@event.listens_for(Session, "before_commit", insert=True)
def _write(session: Session) -> None:
    """Write a transaction's deltas as it commits: one INSERT per table, however many
    placements it wrote, summed per key. Runs before the audit chain's link (registered
    first), which then holds the chain's head lock for the audit rows and the commit alone."""
    deltas = session.info.pop(_KEY, None)
    if deltas is None:
        return
    connection = flushed(session)
    tallies = [
        {"day": day, "rule_id": rule, "tier": tier, "due_day": due, "n": n}
        for (day, rule, tier, due), n in deltas.tallies.items()
        if n
    ]
    if tallies:
        connection.execute(_ADD_TALLIES, tallies)
    lessons = [
        {"day": day, "lesson_id": lesson_id, "mandate": mandate, "n": n}
        for (day, lesson_id, mandate), n in deltas.lessons.items()
        if n
    ]
    if lessons:
        connection.execute(_ADD_LESSON_DAYS, lessons)


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    """A rolled-back transaction changed nothing."""
    session.info.pop(_KEY, None)


# Reading.


def whole_days(filters: Filters) -> tuple[date | None, date | None] | None:
    """The days a period runs over, `until` excluded, when it starts and ends at UTC
    midnights (or is open); None when it does not."""
    ends = []
    for moment in (filters.since, filters.until):
        if moment is not None and moment != start_of(day_of(moment)):
            return None
        ends.append(None if moment is None else day_of(moment))
    return ends[0], ends[1]


def answers(filters: Filters) -> bool:
    """Whether the tallies can answer for `filters`: every placement from a UTC midnight on
    (or ever), with no other filter."""
    since = filters.since
    aligned = since is None or since == start_of(day_of(since))
    return aligned and filters == Filters(since=since)


def since_day(filters: Filters) -> date | None:
    """The first day of a period the tallies answer for."""
    return None if filters.since is None else day_of(filters.since)


def counts(
    session: Session, by: str | None, since: date | None, now: datetime
) -> dict[str | None, dict[str, int]]:
    """Placements per tier at `now` placed on `since` or later, per group: `week` (ISO week
    placed), `rule`, or None (one total under the key None). The same figures as
    `ledger.tier_counts` over a period starting at the beginning of a UTC day."""
    today = day_of(now)
    t = PlacementTallyRow
    overdue = and_(t.tier == _DELIVERED, t.due_day.is_not(None), t.due_day < today)
    tier = case((overdue, literal(_OVERDUE)), else_=t.tier)
    keys: list[Any] = []
    if by == "week":
        keys = [t.day]
    elif by == "rule":
        keys = [t.rule_id]
    elif by is not None:
        raise ValueError(f"tallies are kept per week and per rule, not per {by!r}")
    stmt = select(*keys, tier.label("tier"), func.sum(t.n)).group_by(*keys, tier)
    if since is not None:
        stmt = stmt.where(t.day >= since)
    found: dict[str | None, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in session.execute(stmt):
        group = _group(by, row[0]) if keys else None
        found[group][str(row[-2])] += int(row[-1])
    # Delivered placements falling due today are overdue once their moment has passed.
    for group, n in _due_today(session, by, since, now):
        found[group][_DELIVERED] -= n
        found[group][_OVERDUE] += n
    return {
        group: {name: n for name, n in tiers.items() if n}
        for group, tiers in found.items()
        if any(tiers.values())
    }


def _group(by: str | None, value: Any) -> str | None:
    if by == "week":
        day = value if isinstance(value, date) else date.fromisoformat(str(value))
        return week_of(start_of(day))
    return None if value is None else str(value)


def _due_today(
    session: Session, by: str | None, since: date | None, now: datetime
) -> list[tuple[str | None, int]]:
    """Per group: delivered placements due earlier today (overdue by now) placed since."""
    midnight = start_of(day_of(now))
    p = PlacementRow
    keys: list[Any] = []
    if by == "week":
        keys = [_sql_day(session, p.created_at)]
    elif by == "rule":
        keys = [p.rule_id]
    stmt = select(*keys, func.count()).where(
        p.tier == _DELIVERED, p.due_at >= midnight, p.due_at < now
    )
    if since is not None:
        stmt = stmt.where(p.created_at >= start_of(since))
    if keys:
        stmt = stmt.group_by(*keys)
    found: dict[str | None, int] = defaultdict(int)
    for row in session.execute(stmt):
        if not row[-1]:
            continue
        found[_group(by, row[0]) if keys else None] += int(row[-1])
    return list(found.items())


def lessons_placed(
    session: Session,
    since: date | None,
    until: date | None = None,
    mandates: Sequence[str] = (),
) -> list[str]:
    """The lessons with a placement made from day `since` up to (not including) day `until`;
    with `mandates`, only placements carrying one of them count."""
    stmt = select(LessonDayRow.lesson_id).group_by(LessonDayRow.lesson_id)
    if since is not None:
        stmt = stmt.where(LessonDayRow.day >= since)
    if until is not None:
        stmt = stmt.where(LessonDayRow.day < until)
    if mandates:
        stmt = stmt.where(LessonDayRow.mandate.in_(list(mandates)))
    stmt = stmt.having(func.sum(LessonDayRow.n) > 0)
    return sorted(session.scalars(stmt))


# Upkeep.


def compact(session: Session) -> None:
    """Fold every delta into one row per key, dropping keys that sum to nothing. Concurrent
    writers are not blocked, and what they append meanwhile stays."""
    for table, keys in (
        (PlacementTallyRow, ("day", "rule_id", "tier", "due_day")),
        (LessonDayRow, ("day", "lesson_id", "mandate")),
    ):
        _fold(session, table, keys)


def _fold(session: Session, table: Any, keys: tuple[str, ...]) -> None:
    columns = [getattr(table, k) for k in keys]
    if session.get_bind().dialect.name == "postgresql":
        # One statement, one snapshot: exactly the rows deleted are summed back in, whatever
        # commits meanwhile.
        deleted = delete(table).returning(*columns, table.n).cte("folded")
        sums = (
            select(*(deleted.c[k] for k in keys), func.sum(deleted.c.n))
            .group_by(*(deleted.c[k] for k in keys))
            .having(func.sum(deleted.c.n) != 0)
        )
        session.execute(insert(table).from_select([*keys, "n"], sums))
        return
    # SQLite: the transaction holds the database's only write lock, so nothing commits
    # between the two statements.
    last = session.execute(select(func.max(table.id))).scalar_one_or_none()
    if last is None:
        return
    sums = (
        select(*columns, func.sum(table.n))
        .where(table.id <= last)
        .group_by(*columns)
        .having(func.sum(table.n) != 0)
    )
    session.execute(insert(table).from_select([*keys, "n"], sums))
    session.execute(delete(table).where(table.id <= last))


def rebuild(session: Session) -> None:
    """Count every placement again from the placements table (after a bulk load, and in the
    migration that introduced the tallies)."""
    session.execute(delete(PlacementTallyRow))
    session.execute(delete(LessonDayRow))
    p = PlacementRow
    day = _sql_day(session, p.created_at)
    due = case((p.tier == _DELIVERED, _sql_day(session, p.due_at)), else_=None)
    session.execute(
        insert(PlacementTallyRow).from_select(
            ["day", "rule_id", "tier", "due_day", "n"],
            select(day, p.rule_id, p.tier, due, func.count()).group_by(day, p.rule_id, p.tier, due),
        )
    )
    session.execute(
        insert(LessonDayRow).from_select(
            ["day", "lesson_id", "mandate", "n"],
            select(day, p.lesson_id, p.mandate, func.count()).group_by(day, p.lesson_id, p.mandate),
        )
    )


def _sql_day(session: Session, column: Any) -> ColumnElement[Any]:
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.timezone("UTC", column), Date)
    return func.date(column)  # SQLite keeps UTC text

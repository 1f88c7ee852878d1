"""The placement ledger as reports read it, the report columns kept current, and the aggregates.

Each placement row carries what the reports count (its tier before any due date passes, its ISO
week, the seconds to acknowledge and to verify, the dismissal reason, checkbox-theatre flags,
its work item's team and project), kept current by `refresh`, `refresh_theatre` and
`follow_work_item` in the transaction that changes its state, adds a signal or records the work
item. Reports then aggregate in SQL, never loading placements: `delivered` turns `overdue` at
query time once the due date has passed, the one part of a tier that depends on the clock.
"""

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    and_,
    bindparam,
    case,
    cast,
    func,
    literal,
    literal_column,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.orm import Session

from core.adoption import (
    AT_REST,
    REACHED,
    AdoptionRow,
    Tier,
    assess,
    theatre_flags,
    week_of,
)
from core.placement import Placement, PlacementState, Signal
from core.work import WorkItem
from store.documents import from_doc
from store.tables import (
    HeldBackRow,
    PlacementRow,
    SignalRow,
    WorkItemEventRow,
    WorkItemRow,
    core_table,
    flushed,
)

_BATCH = 500
NO_TEAM = "(no team)"
"""The group of work items whose team is unknown."""
UNKNOWN_PROJECT = "(unknown)"
"""The repository of a placement whose work item was never recorded."""
TOTAL = "(all)"
_DONE = (Tier.ACKNOWLEDGED.value, Tier.VERIFIED.value)


@dataclass(frozen=True, slots=True)
class Filters:
    """Which placements a ledger page or a report covers; empty means any."""

    lessons: Sequence[str] = ()
    teams: Sequence[str] = ()
    projects: Sequence[str] = ()
    states: Sequence[PlacementState] = ()
    tiers: Sequence[Tier] = ()
    since: datetime | None = None
    until: datetime | None = None
    work_items: Sequence[str] = ()

    def of_lessons(self, lessons: Sequence[str]) -> "Filters":
        """These lessons, in the same period and teams, with no other filter."""
        return Filters(lessons=lessons, teams=self.teams, since=self.since, until=self.until)


@dataclass(frozen=True, slots=True)
class Entry:
    """One placement, the work item it sits in (when known) and its signals in time order."""

    placement: Placement
    work_item: WorkItem | None
    signals: tuple[Signal, ...]
    theatre: frozenset[str] = frozenset()
    """Its checkbox-theatre flags, judged over every placement of its work item."""

    @property
    def team(self) -> str:
        """The work item's team, or `(no team)`."""
        return (self.work_item.team if self.work_item else None) or NO_TEAM

    @property
    def project(self) -> str:
        """The repository or Jira project, or `(unknown)` for a work item never recorded."""
        return self.work_item.project if self.work_item else UNKNOWN_PROJECT


# Keeping the report columns current.


def report_columns(placement: Placement, signals: Sequence[Signal]) -> dict[str, Any]:
    """The report columns of a placement row, from the placement and its signals."""
    settled = assess(placement, list(signals), AT_REST)
    return {
        "rule_id": placement.rule_id,
        "mandate": placement.mandate.value,
        "due_at": placement.due_at,
        "week": week_of(placement.created_at),
        "tier": settled.tier.value,
        "acknowledged_after": _seconds(settled.acknowledged_after),
        "verified_after": _seconds(settled.verified_after),
        "dismissal_reason": settled.dismissal_reason,
    }


def _seconds(value: Any) -> float | None:
    return None if value is None else float(value.total_seconds())


def theatre_text(flags: Iterable[str]) -> str | None:
    """Flags as stored: comma-separated in name order, None for none."""
    return ",".join(sorted(flags)) or None


def refresh(session: Session, row: PlacementRow, placement: Placement) -> None:
    """Recompute a placement row's report columns from `placement` and its stored signals."""
    refresh_from(row, placement, _signals_of(session, row.id))


def refresh_from(row: PlacementRow, placement: Placement, signals: Sequence[Signal]) -> None:
    """Recompute a placement row's report columns from `placement` and `signals` (all of its
    stored signals, read by the caller)."""
    for name, value in report_columns(placement, signals).items():
        setattr(row, name, value)


def refresh_theatre(session: Session, work_item_ref: str) -> None:
    """Judge checkbox theatre again over every placement of one work item (a sweep of ticks
    involves several of them)."""
    rows = list(
        session.scalars(select(PlacementRow).where(PlacementRow.work_item_ref == work_item_ref))
    )
    by_id = signals_for(session, [row.id for row in rows])
    flags = theatre_flags((from_doc(Placement, row.doc), by_id.get(row.id, [])) for row in rows)
    for row in rows:
        row.theatre = theatre_text(flags.get(row.id, ()))


def _signals_of(session: Session, placement_id: str) -> list[Signal]:
    rows = session.scalars(
        select(SignalRow.doc)
        .where(SignalRow.placement_id == placement_id)
        .order_by(SignalRow.at, SignalRow.id)
    )
    return [from_doc(Signal, doc) for doc in rows]


def signals_for(session: Session, placement_ids: Sequence[str]) -> dict[str, list[Signal]]:
    """Signals of many placements, each list in time order."""
    found: dict[str, list[Signal]] = defaultdict(list)
    for start in range(0, len(placement_ids), _BATCH):
        chunk = placement_ids[start : start + _BATCH]
        rows = session.execute(
            select(SignalRow.placement_id, SignalRow.doc)
            .where(SignalRow.placement_id.in_(chunk))
            .order_by(SignalRow.at, SignalRow.id)
        )
        for placement_id, doc in rows:
            found[placement_id].append(from_doc(Signal, doc))
    return found


# Selecting placements.

TEAM = func.coalesce(PlacementRow.team, NO_TEAM)
PROJECT = func.coalesce(PlacementRow.project, UNKNOWN_PROJECT)
GROUPS: dict[str, ColumnElement[Any]] = {
    "lesson": PlacementRow.lesson_id.expression,
    "team": TEAM,
    "rule": PlacementRow.rule_id.expression,
    "repository": PROJECT,
    "week": PlacementRow.week.expression,
}
"""What a report can group by, as SQL (`week`: the ISO week the placement was made in)."""


def columns_of_new(placement: Placement, item: Any) -> dict[str, Any]:
    """The report columns of a new placement row in work item `item` (its stored `project`
    and `doc`, as a row; None: not stored)."""
    team = item.doc.get("team") if item is not None and isinstance(item.doc, dict) else None
    return {
        **report_columns(placement, ()),
        "team": team if isinstance(team, str) else None,
        "project": None if item is None else item.project,
    }


_PLACEMENTS = core_table(PlacementRow)
_FOLLOW = (
    update(_PLACEMENTS)
    .where(_PLACEMENTS.c.work_item_ref == bindparam("item_ref"))
    .values(team=bindparam("new_team"), project=bindparam("new_project"))
)
"""Run for every recorded work item: built once, run without the ORM (no report reads a
placement row's team or project from the identity map)."""


def follow_work_item(session: Session, item: WorkItem) -> None:
    """Give the placements in a work item its current team and project."""
    flushed(session).execute(
        _FOLLOW, {"item_ref": item.ref, "new_team": item.team, "new_project": item.project}
    )


def tier_at(now: datetime) -> ColumnElement[str]:
    """The tier at `now` in SQL (see `core.adoption.tier_now`)."""
    overdue = and_(
        PlacementRow.tier == Tier.DELIVERED.value,
        PlacementRow.due_at.is_not(None),
        PlacementRow.due_at < now,
    )
    return case((overdue, Tier.OVERDUE.value), else_=PlacementRow.tier)


S = TypeVar("S", bound=Select[*tuple[Any, ...]])


def _select(stmt: S, filters: Filters, now: datetime) -> S:
    """`stmt` over the placements the filters select."""
    stmt = stmt.select_from(PlacementRow)
    if filters.lessons:
        stmt = stmt.where(PlacementRow.lesson_id.in_(filters.lessons))
    if filters.teams:
        stmt = stmt.where(TEAM.in_(filters.teams))
    if filters.projects:
        stmt = stmt.where(PlacementRow.project.in_(filters.projects))
    if filters.states:
        stmt = stmt.where(PlacementRow.state.in_([s.value for s in filters.states]))
    if filters.tiers:
        stmt = stmt.where(tier_at(now).in_([t.value for t in filters.tiers]))
    if filters.since is not None:
        stmt = stmt.where(PlacementRow.created_at >= filters.since)
    if filters.until is not None:
        stmt = stmt.where(PlacementRow.created_at < filters.until)
    if filters.work_items:
        stmt = stmt.where(PlacementRow.work_item_ref.in_(filters.work_items))
    return stmt


def _postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


AGGREGATE_WORK_MEM = "256MB"
"""Enough for PostgreSQL to sort a quarter holding a million placements in memory."""


def _for_aggregates(session: Session) -> None:
    """On PostgreSQL, let this transaction sort a quarter in memory, without JIT (which costs
    more than it saves on these plans)."""
    if _postgresql(session):
        session.execute(text(f"SET LOCAL work_mem = '{AGGREGATE_WORK_MEM}'"))
        session.execute(text("SET LOCAL jit = off"))


def _key(session: Session, column: ColumnElement[Any] | Any) -> ColumnElement[Any]:
    """A grouping key; byte order on PostgreSQL, where the locale's order sorts far slower
    (the order of groups is Python's business)."""
    key: ColumnElement[Any] = column.collate("C") if _postgresql(session) else column
    return key


def entries(
    session: Session,
    filters: Filters | None = None,
    *,
    now: datetime = AT_REST,
    placement_ids: Sequence[str] = (),
    newest_first: bool = False,
    limit: int | None = None,
    offset: int = 0,
) -> Iterator[Entry]:
    """Placements made in the period, filtered, oldest first (or newest first), with work
    item and signals (a tier filter counts the tier at `now`); `limit`/`offset` page them in
    the database."""
    # Plain columns, not ORM entities: reports read many rows and change none.
    stmt = _select(
        select(PlacementRow.id, PlacementRow.doc, WorkItemRow.doc, PlacementRow.theatre),
        filters or Filters(),
        now,
    ).outerjoin(WorkItemRow, WorkItemRow.ref == PlacementRow.work_item_ref)
    if newest_first:
        stmt = stmt.order_by(PlacementRow.created_at.desc(), PlacementRow.id.desc())
    else:
        stmt = stmt.order_by(PlacementRow.created_at, PlacementRow.id)
    if placement_ids:
        stmt = stmt.where(PlacementRow.id.in_(placement_ids))
    if limit is not None:
        stmt = stmt.limit(limit).offset(offset)
    rows = session.execute(stmt).all()
    by_id = signals_for(session, [placement_id for placement_id, _, _, _ in rows])
    items: dict[str, WorkItem] = {}  # many placements share a work item: parse it once
    for placement_id, placement_doc, item_doc, theatre in rows:
        placement = from_doc(Placement, placement_doc)
        item = None
        if item_doc is not None:
            item = items.get(placement.work_item_ref)
            if item is None:
                item = items[placement.work_item_ref] = from_doc(WorkItem, item_doc)
        flags = frozenset(theatre.split(",")) if theatre else frozenset()
        yield Entry(placement, item, tuple(by_id.get(placement_id, ())), flags)


def tier_counts(
    session: Session, by: str | None, filters: Filters, now: datetime
) -> dict[str | None, dict[str, int]]:
    """Placements per tier at `now`, per group (`lesson`, `team`, `rule`, `repository`; None:
    one total under the key None): counts only, for pages that need no medians or trend."""
    _for_aggregates(session)
    tier = tier_at(now)
    if by is None:
        totals = _select(select(tier, func.count()), filters, now).group_by(tier)
        return {None: {str(t): n for t, n in session.execute(totals)}}
    key = _key(session, GROUPS[by])
    grouped = _select(select(key, tier, func.count()), filters, now).group_by(key, tier)
    found: dict[str | None, dict[str, int]] = defaultdict(dict)
    for group, t, n in session.execute(grouped):
        found[group][str(t)] = n
    return dict(found)


def lesson_ids(session: Session, filters: Filters, now: datetime) -> list[str]:
    """The lessons with a placement among those the filters select."""
    stmt = _select(select(PlacementRow.lesson_id).distinct(), filters, now)
    return sorted(session.scalars(stmt))


_TEAMS_SKIP_SCAN = text(
    """
    WITH RECURSIVE seen(team) AS (
        (SELECT team FROM placements WHERE team IS NOT NULL ORDER BY team LIMIT 1)
        UNION ALL
        SELECT (SELECT p.team FROM placements p WHERE p.team > seen.team ORDER BY p.team LIMIT 1)
        FROM seen WHERE seen.team IS NOT NULL
    )
    SELECT team FROM seen WHERE team IS NOT NULL AND EXISTS (
        SELECT 1 FROM placements p
        WHERE p.team = seen.team AND p.created_at >= :since AND p.created_at < :until
    )
    """
)


def teams_placed(session: Session, since: datetime | None, until: datetime | None) -> list[str]:
    """Every team with a placement made in [since, until), `(no team)` for work items without
    one. On PostgreSQL a skip scan of `ix_placements_team_created_at`: a probe or two per
    team, not a read of the period."""
    low = since or datetime.min.replace(tzinfo=UTC)
    high = until or datetime.max.replace(tzinfo=UTC)
    in_period = and_(PlacementRow.created_at >= low, PlacementRow.created_at < high)
    if _postgresql(session):
        found = set(session.scalars(_TEAMS_SKIP_SCAN, {"since": low, "until": high}))
    else:
        stmt = select(PlacementRow.team).distinct().where(PlacementRow.team.is_not(None))
        found = set(session.scalars(stmt.where(in_period)))
    unnamed = select(PlacementRow.id).where(PlacementRow.team.is_(None), in_period).limit(1)
    if session.scalars(unnamed).first() is not None:
        found.add(NO_TEAM)
    return sorted(found)


def mandated_lessons(session: Session, filters: Filters, mandates: Sequence[str]) -> list[str]:
    """The lessons with a placement the filters select that carries one of `mandates`."""
    stmt = _select(select(PlacementRow.lesson_id).distinct(), filters, AT_REST)
    return sorted(session.scalars(stmt.where(PlacementRow.mandate.in_(list(mandates)))))


def _per_tier(tier: Any) -> list[Any]:
    """One count per tier (in `Tier` order) of the rows of a group."""
    return [func.count().filter(tier == t.value) for t in Tier]


# The adoption report.


def adoption(
    session: Session, by: str, filters: Filters, now: datetime
) -> tuple[list[AdoptionRow], AdoptionRow]:
    """Adoption rows per group (`lesson`, `team`, `rule` or `repository`), in name order, and
    the total, counted by the database: the same figures `core.adoption.report` gives."""
    _for_aggregates(session)
    inner = _select(
        select(
            _key(session, GROUPS[by]).label("grp"),
            PlacementRow.week.label("week"),
            tier_at(now).label("tier"),
            PlacementRow.dismissal_reason.label("reason"),
            PlacementRow.theatre.label("theatre"),
            PlacementRow.created_at.label("created_at"),
            PlacementRow.acknowledged_after.label("acknowledged"),
            PlacementRow.verified_after.label("verified"),
        ),
        filters,
        now,
    ).subquery()
    keys = (inner.c.grp, inner.c.week, inner.c.reason, inner.c.theatre)
    counted = select(*keys, *_per_tier(inner.c.tier), func.min(inner.c.created_at)).group_by(*keys)
    rows: dict[str, AdoptionRow] = {}
    total = AdoptionRow(TOTAL)
    dismissals: dict[str, dict[str, tuple[datetime, int]]] = defaultdict(dict)
    for grp, week, reason, theatre, *counts, first in session.execute(counted):
        for row in (rows.setdefault(grp, AdoptionRow(grp)), total):
            for tier, n in zip(Tier, counts, strict=True):
                if n:
                    _count(row, week, tier, theatre, n)
            dismissed = counts[_DISMISSED]
            if dismissed:
                seen = dismissals[row.group].get(reason)
                dismissals[row.group][reason] = (
                    (first, dismissed)
                    if seen is None
                    else (min(seen[0], first), seen[1] + dismissed)
                )
    for row in [*rows.values(), total]:
        # Counter.most_common keeps ties in insertion order: the reason given first, first.
        for reason, (_first, n) in sorted(
            dismissals[row.group].items(), key=lambda kv: (kv[1][0], kv[0])
        ):
            row.dismissals[reason] = n
    for grp, acknowledged, verified in _medians(session, inner):
        row = total if grp is None else rows[grp]
        row.acknowledge_median, row.verify_median = acknowledged, verified
    return [rows[name] for name in sorted(rows)], total


_DISMISSED = list(Tier).index(Tier.DISMISSED)


def _count(row: AdoptionRow, week: str, tier: Tier, theatre: str | None, n: int) -> None:
    """Add `n` placements of one week, tier and theatre to a row, as `AdoptionRow.add` would."""
    row.tiers[tier.value] += n
    counts = row.weeks[week]
    counts["placed"] += n
    if tier in REACHED:
        row.reach += n
    if tier.value in _DONE:
        counts["acknowledged"] += n
        if theatre:
            row.theatre["placements"] += n
            for flag in theatre.split(","):
                row.theatre[flag] += n
    if tier == Tier.VERIFIED:
        counts["verified"] += n


def _medians(
    session: Session, inner: Any
) -> Iterator[tuple[str | None, float | None, float | None]]:
    """(group, median seconds to acknowledge, to verify) per group, then (None, …) overall."""
    if _postgresql(session):
        # One sort for the groups and the total: GROUPING SETS, the total being ().
        half = literal(0.5)
        stmt = select(
            inner.c.grp,
            func.grouping(inner.c.grp),
            func.percentile_cont(half).within_group(inner.c.acknowledged),
            func.percentile_cont(half).within_group(inner.c.verified),
        ).group_by(func.grouping_sets(tuple_(inner.c.grp), tuple_()))
        for grp, overall, acknowledged, verified in session.execute(stmt):
            yield None if overall else grp, acknowledged, verified
        return
    # SQLite has no percentile: the middle one or two values of each group, by row number.
    found: dict[str | None, list[float | None]] = defaultdict(lambda: [None, None])
    for at, column in enumerate((inner.c.acknowledged, inner.c.verified)):
        for grp, median in _window_median(session, inner.c.grp, column):
            found[grp][at] = median
        for _, median in _window_median(session, None, column):
            found[None][at] = median
    for grp, (acknowledged, verified) in found.items():
        yield grp, acknowledged, verified


def _window_median(session: Session, grp: Any, column: Any) -> Iterator[tuple[str | None, float]]:
    partition = [] if grp is None else [grp]
    numbered = (
        select(
            (grp if grp is not None else literal(None, String)).label("grp"),
            column.label("v"),
            func.row_number().over(partition_by=partition, order_by=column).label("rn"),
            func.count().over(partition_by=partition).label("n"),
        )
        .where(column.is_not(None))
        .subquery()
    )
    middle = (
        select(numbered.c.grp, func.avg(numbered.c.v))
        .where(numbered.c.rn.in_([(numbered.c.n + 1) // 2, (numbered.c.n + 2) // 2]))
        .group_by(numbered.c.grp)
    )
    for name, median in session.execute(middle):
        yield name, float(median)


# The compliance matrix.


@dataclass(slots=True)
class CellCount:
    """The placements of one lesson in one team's work: how many per tier at `now` (by tier
    value), how many a rule placed with a mandate that makes the lesson mandated, and (when
    asked for) those that reached the work, oldest first."""

    lesson_id: str
    team: str
    tiers: Counter[str]
    mandated: int
    placements: list[str] = field(default_factory=list)

    def add(self, other: "CellCount") -> None:
        """Count another row of the same cell in."""
        self.tiers.update(other.tiers)
        self.mandated += other.mandated
        self.placements += other.placements


_TIERS = [t.value for t in Tier]
_REACHED = [t.value for t in Tier if t in REACHED]


def cell_counts(
    session: Session,
    filters: Filters,
    now: datetime,
    mandates: Sequence[str],
    *,
    placements: bool = False,
) -> list[CellCount]:
    """Per lesson and team: the placements per tier, how many carry one of `mandates`, and
    with `placements` the ids of those that reached the work, oldest first.

    Grouped by the plain columns, so PostgreSQL can read the cells in the order of
    `ix_placements_cells` instead of sorting the period.
    """
    _for_aggregates(session)
    inner = _select(
        select(
            PlacementRow.lesson_id.label("lesson"),
            PlacementRow.team.label("team"),
            tier_at(now).label("tier"),
            PlacementRow.mandate.label("mandate"),
            PlacementRow.id.label("id"),
            PlacementRow.created_at.label("created_at"),
        ),
        filters,
        now,
    ).subquery()
    keys = (inner.c.lesson, inner.c.team)
    counts = [func.count().filter(inner.c.mandate.in_(mandates)), *_per_tier(inner.c.tier)]
    reached = inner.c.tier.in_(_REACHED)
    listed: Any = None
    if placements and _postgresql(session):
        # One string per cell: a quarter holds a million ids, and rows cost more than text.
        ordered: Any = aggregate_order_by(literal_column("' '"), inner.c.created_at, inner.c.id)
        listed = func.string_agg(inner.c.id, ordered).filter(reached)
    stmt = select(*keys, *counts, *([] if listed is None else [listed])).group_by(*keys)
    cells: dict[tuple[str, str], CellCount] = {}
    for row in session.execute(stmt):
        lesson, team, mandated = row[0], row[1], row[2]
        found = row[3 : 3 + len(_TIERS)]
        joined = row[-1] if listed is not None else None
        cell = CellCount(
            lesson,
            team or NO_TEAM,
            Counter({t: n for t, n in zip(_TIERS, found, strict=True) if n}),
            mandated,
            joined.split(" ") if joined else [],
        )
        known = cells.get((lesson, cell.team))
        if known is None:
            cells[(lesson, cell.team)] = cell
        else:  # a team named like the group of work items without one
            known.add(cell)
    if placements and listed is None:
        ordered_rows = (
            select(*keys, inner.c.id).where(reached).order_by(inner.c.created_at, inner.c.id)
        )
        for lesson, team, pid in session.execute(ordered_rows):
            cells[(lesson, team or NO_TEAM)].placements.append(pid)
    return list(cells.values())


def in_work_items(
    session: Session, filters: Filters, now: datetime, pairs: Iterable[tuple[str, str]]
) -> list[tuple[str, str, str, str, Tier]]:
    """(placement, lesson, team, work item, tier at `now`) of the placements of these
    (lesson, work item) pairs that the filters select."""
    wanted = sorted(set(pairs))
    if not wanted:
        return []
    stmt = _select(
        select(
            PlacementRow.id,
            PlacementRow.lesson_id,
            TEAM,
            PlacementRow.work_item_ref,
            tier_at(now),
        ),
        filters,
        now,
    ).where(
        # The work items beside the row-value IN: SQLite searches no index for that alone and
        # would read every placement.
        PlacementRow.work_item_ref.in_(sorted({ref for _, ref in wanted})),
        tuple_(PlacementRow.lesson_id, PlacementRow.work_item_ref).in_(wanted),
    )
    return [
        (pid, lesson, team, ref, Tier(tier))
        for pid, lesson, team, ref, tier in session.execute(
            stmt.order_by(PlacementRow.created_at, PlacementRow.id)
        )
    ]


def team_work(
    session: Session, since: datetime | None, until: datetime | None, teams: Sequence[str]
) -> dict[str, int]:
    """How many work items were seen in [since, until) with each of `teams` (as they had
    then); `(no team)` counts those seen without one."""
    team = cast(WorkItemEventRow.doc["team"].as_string(), String)
    inner = select(func.coalesce(team, NO_TEAM).label("team"), WorkItemEventRow.ref)
    if since is not None:
        inner = inner.where(WorkItemEventRow.observed_at >= since)
    if until is not None:
        inner = inner.where(WorkItemEventRow.observed_at < until)
    sub = inner.subquery()
    stmt = (
        select(sub.c.team, func.count(sub.c.ref.distinct()))
        .where(sub.c.team.in_(teams))
        .group_by(sub.c.team)
    )
    return {name: n for name, n in session.execute(stmt)}


def held_back(
    session: Session,
    since: datetime | None,
    until: datetime | None,
    lessons: Sequence[str],
    teams: Sequence[str],
) -> dict[tuple[str, str], Counter[str]]:
    """Per (lesson, team): how many of the team's work items the route held the lesson back
    from in [since, until), by reason (`suppressed`, `budget`)."""
    team = func.coalesce(HeldBackRow.team, NO_TEAM)
    stmt = (
        select(HeldBackRow.lesson_id, team, HeldBackRow.reason, func.count())
        .where(HeldBackRow.lesson_id.in_(lessons), team.in_(teams))
        .group_by(HeldBackRow.lesson_id, team, HeldBackRow.reason)
    )
    if since is not None:
        stmt = stmt.where(HeldBackRow.at >= since)
    if until is not None:
        stmt = stmt.where(HeldBackRow.at < until)
    found: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for lesson, name, reason, n in session.execute(stmt):
        found[(lesson, name)][reason] += n
    return dict(found)

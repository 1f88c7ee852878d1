"""Adoption: how far each placed lesson got, from "received" to "changed", and the report over many.

A placement's tier is derived from its state and its signals, so it is always current:
`delivered` (in the target) → `acknowledged` (ticked, sub-task done) → `verified` (the work
item merged or was resolved with the item ticked, or training completed). Beside them:
`dismissed` (with its reason), `ignored` (the work ended with the item open), `overdue` (its due
date passed with the item open), `withdrawn`, and `undelivered` (planned or failed: never reached
the target, so it counts toward no rate).
"""

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from core.placement import Placement, PlacementState, Signal, SignalKind


class Tier(StrEnum):
    """How far a placed lesson got."""

    UNDELIVERED = "undelivered"
    DELIVERED = "delivered"
    ACKNOWLEDGED = "acknowledged"
    VERIFIED = "verified"
    DISMISSED = "dismissed"
    IGNORED = "ignored"
    OVERDUE = "overdue"
    WITHDRAWN = "withdrawn"


ACKNOWLEDGING = frozenset({SignalKind.TICKED, SignalKind.SUBTASK_DONE})
VERIFYING = frozenset(
    {
        SignalKind.MERGED_CLEAN,
        SignalKind.RESOLVED_CLEAN,
        SignalKind.SUBTASK_DONE,
        SignalKind.TRAINING_COMPLETED,
    }
)
ENDED_OPEN = frozenset({SignalKind.MERGED_UNCHECKED, SignalKind.RESOLVED_UNCHECKED})
ZERO = timedelta(0)
REACHED = frozenset(Tier) - {Tier.UNDELIVERED, Tier.WITHDRAWN}
"""Tiers that count as reach: the item was in the work and is still meant to be."""


AT_REST = datetime.min.replace(tzinfo=UTC)
"""A moment before every due date: the tier a placement has before its due date passes."""


def tier_now(at_rest: Tier, due_at: datetime | None, now: datetime) -> Tier:
    """The tier at `now` from the tier at rest: an item still open past its due date is overdue
    (the one difference `now` makes to `tier_of`)."""
    if at_rest == Tier.DELIVERED and due_at is not None and now > due_at:
        return Tier.OVERDUE
    return at_rest


def tier_of(placement: Placement, signals: Iterable[Signal], now: datetime) -> Tier:
    """The placement's tier at `now`, from its state and its signals."""
    state = placement.state
    if state == PlacementState.WITHDRAWN:
        return Tier.WITHDRAWN
    if state in (PlacementState.PLANNED, PlacementState.FAILED):
        return Tier.UNDELIVERED
    if state == PlacementState.DISMISSED:
        return Tier.DISMISSED
    kinds = {signal.kind for signal in signals}
    if state == PlacementState.COMPLETED:
        return Tier.VERIFIED if kinds & VERIFYING else Tier.ACKNOWLEDGED
    if kinds & ENDED_OPEN:
        return Tier.IGNORED
    if state == PlacementState.OVERDUE or (placement.due_at is not None and now > placement.due_at):
        return Tier.OVERDUE
    return Tier.DELIVERED


_STATE_AFTER = {
    SignalKind.TICKED: PlacementState.COMPLETED,
    SignalKind.SUBTASK_DONE: PlacementState.COMPLETED,
    SignalKind.TRAINING_COMPLETED: PlacementState.COMPLETED,
    SignalKind.UNTICKED: PlacementState.EMBEDDED,
    SignalKind.DISMISSED: PlacementState.DISMISSED,
}


def tier_at(placement: Placement, signals: Iterable[Signal], at: datetime) -> Tier | None:
    """The tier the placement had at `at`, replayed from the signals before it (None: it had
    not been placed yet). A withdrawal leaves no signal, so it is taken as it stands now."""
    if placement.created_at > at:
        return None
    if placement.state == PlacementState.WITHDRAWN and placement.updated_at <= at:
        return Tier.WITHDRAWN
    before = [s for s in signals if s.at <= at]
    state = PlacementState.EMBEDDED
    for signal in sorted(before, key=lambda s: s.at):
        state = _STATE_AFTER.get(signal.kind, state)
    then = placement.model_copy(update={"state": state})
    return tier_of(then, before, at)


HONOURED = frozenset({Tier.ACKNOWLEDGED, Tier.VERIFIED})
"""A placement whose lesson was acted on before the incident."""


def _first(signals: Iterable[Signal], kinds: frozenset[SignalKind]) -> datetime | None:
    found = [s.at for s in signals if s.kind in kinds]
    return min(found) if found else None


@dataclass(frozen=True, slots=True)
class Adoption:
    """One placement as the reports see it: its tier and how long each step took."""

    placement: Placement
    tier: Tier
    acknowledged_after: timedelta | None
    verified_after: timedelta | None
    dismissal_reason: str | None
    theatre: frozenset[str] = frozenset()
    """Signs that a tick was a formality (see `theatre_flags`); the tier is not changed."""


QUICK_TICK = timedelta(seconds=30)
"""A tick this soon after the item was placed was hardly read."""
BULK_WINDOW = timedelta(seconds=5)
BULK_ITEMS = 3
"""This many items of one work item ticked within the window (or in one edit) is a sweep."""
_GROUPED_BOX = "\x00grouped"
"""The box of a work item's grouped lessons (no placement id has a control character)."""
THEATRE_KINDS = frozenset(
    {SignalKind.TICKED, SignalKind.UNTICKED, SignalKind.MERGED_CLEAN, SignalKind.RESOLVED_CLEAN}
)
"""The signals `theatre_flags` looks at."""


def theatre_flags(items: Iterable[tuple[Placement, Sequence[Signal]]]) -> dict[str, frozenset[str]]:
    """Checkbox theatre per placement id: `quick_tick`, `bulk_tick`, `unticked_after_merge`.

    A sweep is judged over every placement given, so pass every placement of a work item. The
    grouped lessons of a work item are ticked with one box, so they count as one item of a sweep.
    """
    flags: dict[str, set[str]] = defaultdict(set)
    ticks_by_item: dict[str, list[tuple[datetime, str | None, str, str]]] = defaultdict(list)
    for placement, signals in items:
        ended = None
        for signal in signals:
            if signal.kind == SignalKind.TICKED:
                if signal.at - placement.created_at < QUICK_TICK:
                    flags[placement.id].add("quick_tick")
                box = _GROUPED_BOX if placement.grouped else placement.id
                ticks_by_item[placement.work_item_ref].append(
                    (signal.at, signal.delivery_id, placement.id, box)
                )
            elif signal.kind in (SignalKind.MERGED_CLEAN, SignalKind.RESOLVED_CLEAN):
                ended = signal.at
            elif signal.kind == SignalKind.UNTICKED and ended is not None and signal.at >= ended:
                flags[placement.id].add("unticked_after_merge")
    for ticks in ticks_by_item.values():
        ticks.sort(key=lambda t: t[0])
        by_delivery: dict[str, dict[str, str]] = defaultdict(dict)
        for _at, delivery, pid, box in ticks:
            if delivery is not None:
                by_delivery[delivery][pid] = box
        swept = {
            pid
            for boxes in by_delivery.values()
            if len(set(boxes.values())) >= BULK_ITEMS
            for pid in boxes
        }
        for start, (at, *_rest) in enumerate(ticks):
            window = {pid: box for t, _dd, pid, box in ticks[start:] if t - at <= BULK_WINDOW}
            if len(set(window.values())) >= BULK_ITEMS:
                swept |= set(window)
        for pid in swept:
            flags[pid].add("bulk_tick")
    return {pid: frozenset(found) for pid, found in flags.items()}


def assess(placement: Placement, signals: list[Signal], now: datetime) -> Adoption:
    """The placement's tier and its times to acknowledge and to verify (from placement)."""
    tier = tier_of(placement, signals, now)
    acknowledged = _first(signals, ACKNOWLEDGING)
    verified = _first(signals, VERIFYING) if tier == Tier.VERIFIED else None
    start = placement.created_at
    # A target's clock (or its whole-second timestamps) can put a mark just before placement.
    return Adoption(
        placement=placement,
        tier=tier,
        acknowledged_after=None if acknowledged is None else max(ZERO, acknowledged - start),
        verified_after=None if verified is None else max(ZERO, verified - start),
        dismissal_reason=(placement.reason or "(no reason given)")
        if tier == Tier.DISMISSED
        else None,
    )


def precision(verified: int, dismissed: int, ignored: int) -> float | None:
    """How often a placement was worth it: verified ÷ (verified + dismissed + ignored)."""
    decided = verified + dismissed + ignored
    return round(verified / decided, 4) if decided else None


def _hours(median: float | None, values: list[timedelta]) -> float | None:
    """Median hours, from seconds already worked out or from the list of times."""
    if values:
        median = statistics.median(v.total_seconds() for v in values)
    return None if median is None else round(median / 3600, 2)


def week_of(moment: datetime) -> str:
    """The ISO week a moment falls in, as `2026-W49`."""
    year, week, _ = moment.isocalendar()
    return f"{year}-W{week:02d}"


@dataclass
class AdoptionRow:
    """The adoption of one group (a lesson, team, rule or repository)."""

    group: str
    reach: int = 0
    tiers: Counter[str] = field(default_factory=Counter)
    dismissals: Counter[str] = field(default_factory=Counter)
    acknowledge_times: list[timedelta] = field(default_factory=list)
    verify_times: list[timedelta] = field(default_factory=list)
    weeks: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    theatre: Counter[str] = field(default_factory=Counter)
    acknowledge_median: float | None = None
    verify_median: float | None = None
    """Median seconds to acknowledge and to verify when the database worked them out (the
    time lists stay empty then)."""

    def add(self, adoption: Adoption) -> None:
        """Count one placement in this group."""
        self.tiers[adoption.tier.value] += 1
        week = self.weeks[week_of(adoption.placement.created_at)]
        week["placed"] += 1
        if adoption.tier in REACHED:
            self.reach += 1
        if adoption.tier in (Tier.ACKNOWLEDGED, Tier.VERIFIED):
            week["acknowledged"] += 1
        if adoption.tier == Tier.VERIFIED:
            week["verified"] += 1
        if adoption.dismissal_reason is not None:
            self.dismissals[adoption.dismissal_reason] += 1
        if adoption.theatre and adoption.tier in (Tier.ACKNOWLEDGED, Tier.VERIFIED):
            self.theatre["placements"] += 1
            self.theatre.update(adoption.theatre)
        if adoption.acknowledged_after is not None:
            self.acknowledge_times.append(adoption.acknowledged_after)
        if adoption.verified_after is not None:
            self.verify_times.append(adoption.verified_after)

    def precision(self) -> dict[str, object]:
        """Verified ÷ (verified + dismissed + ignored), with the three counts."""
        verified, dismissed, ignored = (
            self.tiers[t.value] for t in (Tier.VERIFIED, Tier.DISMISSED, Tier.IGNORED)
        )
        return {
            "value": precision(verified, dismissed, ignored),
            "verified": verified,
            "dismissed": dismissed,
            "ignored": ignored,
        }

    def as_dict(self) -> dict[str, object]:
        """The row as plain data: counts, rates over reach, medians in hours, weekly trend."""
        done = self.tiers[Tier.ACKNOWLEDGED.value] + self.tiers[Tier.VERIFIED.value]
        rates = {
            tier.value: round(self.tiers[tier.value] / self.reach, 4) if self.reach else None
            for tier in Tier
            if tier in REACHED
        }
        return {
            "group": self.group,
            "reach": self.reach,
            "precision": self.precision(),
            "counts": {tier.value: self.tiers[tier.value] for tier in Tier},
            "rates": rates,
            "dismissals": dict(self.dismissals.most_common()),
            "median_hours_to_acknowledge": _hours(self.acknowledge_median, self.acknowledge_times),
            "median_hours_to_verify": _hours(self.verify_median, self.verify_times),
            "weeks": {week: dict(counts) for week, counts in sorted(self.weeks.items())},
            # Ticks that look like formalities: counted above as they came, and shown here.
            "theatre": {
                "share": round(self.theatre["placements"] / done, 4) if done else None,
                **{flag: n for flag, n in sorted(self.theatre.items()) if flag != "placements"},
            },
        }


def report(grouped: Iterable[tuple[str, Adoption]]) -> list[AdoptionRow]:
    """Adoption rows per group, from (group, adoption) pairs; groups in name order."""
    rows: dict[str, AdoptionRow] = {}
    for group, adoption in grouped:
        rows.setdefault(group, AdoptionRow(group)).add(adoption)
    return [rows[name] for name in sorted(rows)]

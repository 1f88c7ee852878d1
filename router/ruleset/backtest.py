"""Replaying stored work-item events through draft rules: what they would place, beside the rules
in force, and which work items would pass their fatigue budget. Reads; writes nothing."""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from core.base import utcnow
from core.work import WorkItem
from rules.engine import Engine
from rules.loader import RuleSet
from store import lessons, work_items
from store.engine import Database

NO_TEAM = "(no team)"

Placed = Counter[tuple[str, str, str]]
"""(team, work item, lesson) → how many times the engine placed it (once, in practice)."""


def replay(engine: Engine, events: Sequence[tuple[object, WorkItem]]) -> Placed:
    """(team, work item, lesson) triples the engine would have placed, replaying in order."""
    placed: dict[str, set[str]] = {}
    result: Placed = Counter()
    for _at, item in events:
        already = placed.setdefault(item.ref, set())
        for decision in engine.route(item, already_placed=already).placements:
            already.add(decision.lesson_id)
            result[(item.team or NO_TEAM, item.ref, decision.lesson_id)] += 1
    return result


@dataclass(frozen=True, slots=True)
class OverBudget:
    """A work item that would receive more items than its team's budget."""

    ref: str
    team: str
    items: int
    budget: int

    @property
    def extra(self) -> int:
        """How many items past the budget."""
        return self.items - self.budget

    @property
    def grouped(self) -> int:
        """How many required lessons past the budget would share its one grouped item (only
        required lessons get past a budget, so every item past it is grouped)."""
        return self.extra


def over_budget(rule_set: RuleSet, placed: Placed) -> list[OverBudget]:
    """Work items whose placements would pass their team's fatigue budget (required lessons
    always go in, so a budget is a target, not a cap), worst first."""
    per_item: Counter[tuple[str, str]] = Counter()
    for team, ref, _lesson in placed:
        per_item[(team, ref)] += 1
    over = []
    for (team, ref), count in per_item.items():
        budget = rule_set.team_budget(None if team == NO_TEAM else team).max_items_per_work_item
        if count > budget:
            over.append(OverBudget(ref, team, count, budget))
    over.sort(key=lambda row: (-row.extra, row.ref))
    return over


@dataclass(frozen=True, slots=True)
class TeamChange:
    """Placements per team under the draft and the active rules."""

    team: str
    draft: int
    active: int

    @property
    def change(self) -> int:
        """Draft minus active."""
        return self.draft - self.active


@dataclass(frozen=True, slots=True)
class Backtest:
    """The difference a draft rule set would make over a window of stored work-item events."""

    events: int
    lessons: int
    draft_version: str
    active_version: str | None
    teams: list[TeamChange]
    added: list[tuple[str, str, str]]
    removed: list[tuple[str, str, str]]
    over_budget: list[OverBudget] = field(default_factory=list)


def backtest(db: Database, draft: RuleSet, active: RuleSet | None, window: timedelta) -> Backtest:
    """Replay the events of the last `window` through `draft` and `active`."""
    with db.transaction() as session:
        events = work_items.events_since(session, utcnow() - window)
        published = lessons.published(session)
    draft_placed = replay(Engine(draft, published), events)
    active_placed = replay(Engine(active, published), events) if active else Counter()
    teams = sorted({t for t, _, _ in draft_placed} | {t for t, _, _ in active_placed})
    return Backtest(
        events=len(events),
        lessons=len(published),
        draft_version=draft.version,
        active_version=None if active is None else active.version,
        teams=[
            TeamChange(
                team,
                sum(n for (t, _, _), n in draft_placed.items() if t == team),
                sum(n for (t, _, _), n in active_placed.items() if t == team),
            )
            for team in teams
        ],
        added=sorted(set(draft_placed) - set(active_placed)),
        removed=sorted(set(active_placed) - set(draft_placed)),
        over_budget=over_budget(draft, draft_placed),
    )

"""Why the route did not place a mandated lesson it selected for a work item.

The indexed engine returns only what it places. When a rule the work item matched suppresses
a lesson, or when the fatigue budget is spent, the lessons mandated by their own mandate that
the matched rules select are decided again the way `rules.reference` decides them (with the
engine's compiled applicability): one that a suppressing rule wins is `suppressed`, one that a
rule would place is `budget`. Nothing is looked at when neither can have happened, so most
routings pay nothing.
"""

from collections import defaultdict
from collections.abc import Collection

from core.compliance import NotReached
from core.feedback import MANDATED
from core.lesson import Mandate
from core.work import WorkItem
from rules.decision import Candidate, Routing
from rules.engine import Engine
from rules.reference import team_failure
from rules.select import winner

Held = dict[str, tuple[str, str]]
"""Lesson id → (reason, detail)."""


class _Compiled:
    """What one engine (one rule set and its published lessons) needs here, worked out once."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.candidates: list[Candidate] = []
        for pack in engine.rule_set.packs:  # numbered as the engine numbers them
            for rule in pack.rules:
                self.candidates.append(Candidate(rule, pack, len(self.candidates)))
        self.suppresses = any(c.rule.then.suppress for c in self.candidates)
        self.mandated = frozenset(
            n for n, lesson in enumerate(engine.lessons) if lesson.mandate in MANDATED
        )
        self._members: dict[int, frozenset[int]] = {}

    def members(self, number: int) -> frozenset[int]:
        """The mandated lessons (by number) rule `number` selects."""
        found = self._members.get(number)
        if found is None:
            found = self._members[number] = self.engine.rule_members(number) & self.mandated
        return found


_COMPILED: dict[int, _Compiled] = {}


def _compiled(engine: Engine) -> _Compiled:
    found = _COMPILED.get(id(engine))
    if found is None or found.engine is not engine:
        if len(_COMPILED) >= 4:
            _COMPILED.clear()
        found = _COMPILED[id(engine)] = _Compiled(engine)
    return found


def held_back(
    engine: Engine, item: WorkItem, routing: Routing, already_placed: Collection[str]
) -> Held:
    """The mandated lessons a matched rule selected for `item` and that were not placed."""
    compiled = _compiled(engine)
    budget = engine.rule_set.team_budget(item.team).max_items_per_work_item
    spent = len(routing.placements) + len(already_placed) >= budget
    if not spent and not compiled.suppresses:
        return {}
    _, matched = engine.matched_rules(item)
    selecting: dict[int, list[Candidate]] = defaultdict(list)
    suppressed: set[int] = set()
    for number in matched:
        candidate = compiled.candidates[number]
        if team_failure(candidate.pack, item) is not None:
            continue
        for n in compiled.members(number):
            selecting[n].append(candidate)
            if candidate.rule.then.suppress:
                suppressed.add(n)
    placed = {d.lesson_id for d in routing.placements} | set(already_placed)
    deciding = [
        n
        for n in sorted(selecting if spent else suppressed)
        if engine.lessons[n].id not in placed
        # A required lesson goes in past the budget: only a suppression stops it.
        and (engine.lessons[n].mandate != Mandate.REQUIRED or n in suppressed)
    ]
    applicable = engine.applicable(item, deciding)
    held: Held = {}
    for n in deciding:
        lesson = engine.lessons[n]
        chosen, why = winner(lesson, _applicable(selecting[n], n in applicable))
        if chosen is None:
            if why.startswith("suppressed"):
                held[lesson.id] = (NotReached.SUPPRESSED.value, why)
        elif spent:
            held[lesson.id] = (NotReached.BUDGET.value, f"over the fatigue budget of {budget}")
    return held


def _applicable(rules: list[Candidate], applies: bool) -> list[Candidate]:
    """Of the rules selecting a lesson, those that may place it in the work item: all of them
    where its applicability holds, else those that override it."""
    if applies:
        return rules
    return [c for c in rules if c.rule.override_applicability]

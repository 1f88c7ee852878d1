"""Precedence among competing rules, de-duplication and the fatigue budget."""

from collections.abc import Collection, Iterable, Mapping

from core.lesson import Lesson, Mandate
from core.placement import GROUPABLE
from rules.decision import MANDATE_ORDER, Candidate, Decision, Routing, Skipped, decide
from rules.model import Level


def winner(lesson: Lesson, candidates: Iterable[Candidate]) -> tuple[Candidate | None, str]:
    """The rule that decides for a lesson, or None with the reason it is not placed.

    A team pack's suppression gives way only where the organisation's own decision for the
    lesson (its highest-ranked organisation rule) places it as required.
    """
    ranked = sorted(candidates, key=lambda c: c.precedence, reverse=True)
    if not ranked:
        return None, "no rule selects it"
    best = ranked[0]
    if not best.rule.then.suppress:
        return best, ""
    if best.pack.level == Level.TEAM:
        organisation = next((c for c in ranked if c.pack.level == Level.ORGANISATION), None)
        if (
            organisation is not None
            and not organisation.rule.then.suppress
            and Mandate.REQUIRED in (organisation.rule.then.mandate, lesson.mandate)
        ):
            return organisation, ""
    return None, f"suppressed by {best.rule_id}"


def select(
    lessons: Mapping[str, Lesson],
    candidates: Mapping[str, list[Candidate]],
    *,
    rule_set_version: str,
    already_placed: Collection[str],
    budget: int,
    explain: bool = False,
) -> Routing:
    """Pick one winning rule per lesson, skip lessons already placed, then apply the budget.

    Required lessons are always placed, even past the budget; the others are placed strongest
    mandate first, then by priority, then by the severity of their source incidents.
    """
    decisions: list[Decision] = []
    skipped: list[Skipped] = []
    for lesson_id, found in candidates.items():
        lesson = lessons[lesson_id]
        chosen, reason = winner(lesson, found)
        if chosen is None:
            if explain:
                skipped.append(Skipped(lesson_id, reason))
        elif lesson_id in already_placed:
            if explain:
                skipped.append(Skipped(lesson_id, "already placed in this work item"))
        else:
            decisions.append(decide(lesson, chosen, rule_set_version))
    decisions.sort(
        key=lambda d: (MANDATE_ORDER[d.mandate], -d.priority, d.severity_rank, d.lesson_id)
    )
    room = budget - len(already_placed)
    placed: list[Decision] = []
    for decision in decisions:
        if decision.mandate == Mandate.REQUIRED or room > 0:
            placed.append(decision)
            room -= 1
        elif explain:
            skipped.append(Skipped(decision.lesson_id, f"over the fatigue budget of {budget}"))
    return Routing(tuple(placed), tuple(skipped))


def grouped(decisions: Iterable[Decision], *, budget: int, shown: int) -> frozenset[str]:
    """The lessons whose items go into the work item's grouped item instead of items of their
    own: in placement order, those that come once it shows `budget` items of their own (`shown`
    of them before these decisions).

    Only required lessons get past the budget, so only they are grouped; a training assignment
    is never an item of a checklist, so it is never grouped.
    """
    room = budget - shown
    found: set[str] = set()
    for decision in decisions:
        if room <= 0 and decision.form in GROUPABLE:
            found.add(decision.lesson_id)
        else:
            room -= 1
    return frozenset(found)

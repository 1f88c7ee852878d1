"""Stage `route`: decide which published lessons belong in a work item and plan placements."""

import hashlib
from datetime import datetime
from typing import Any

from connectors.lms_target import learner_item
from core.compliance import NotReached
from core.errors import PayloadError
from core.feedback import LIVE
from core.lesson import Lesson, Mandate
from core.placement import EmbeddingForm, Placement, PlacementState
from core.work import System, WorkItem
from router.pipeline import Handler, StageContext
from router.ruleset.active import ActiveRules
from router.stages.held_back import Held, held_back
from rules.decision import Decision
from rules.engine import Engine
from rules.loader import RuleSet
from rules.model import FlagAction, Rule
from rules.select import grouped
from store import audit, flags, placements, teams, work_items
from store import held_back as held_back_store

TOPIC = "route"
EMBED_TOPIC = "embed"
ACTOR = "cairn:router"
_SHOWN = LIVE | {PlacementState.PLANNED}
"""Placements whose item is (or is about to be) in the work item."""


_RULES_BY_ID: dict[str, dict[str, Rule]] = {}


def _rules_by_id(rule_set: RuleSet) -> dict[str, Rule]:
    """Pack-qualified rule id → rule, computed once per rule-set version."""
    found = _RULES_BY_ID.get(rule_set.version)
    if found is None:
        found = {f"{p.pack}/{rule.id}": rule for p in rule_set.packs for rule in p.rules}
        if len(_RULES_BY_ID) >= 4:
            _RULES_BY_ID.clear()
        _RULES_BY_ID[rule_set.version] = found
    return found


def placement_id(effect_id: str) -> str:
    """A stable placement id derived from the effect it stands for."""
    return "pl_" + hashlib.sha256(effect_id.encode()).hexdigest()[:20]


def planned_placement(
    decision: Decision, ref: str, text: str, now: datetime, grouped: bool = False
) -> Placement:
    """The planned placement a decision makes in work item `ref`, with its stable id."""
    candidate = Placement(
        id="pending",
        lesson_id=decision.lesson_id,
        lesson_version=decision.lesson_version,
        work_item_ref=ref,
        rule_id=decision.rule_id,
        rule_set_version=decision.rule_set_version,
        form=decision.form,
        mandate=decision.mandate,
        due_at=None if decision.due_in is None else now + decision.due_in,
        state=PlacementState.PLANNED,
        text=text,
        grouped=grouped,
        created_at=now,
        updated_at=now,
    )
    return candidate.model_copy(update={"id": placement_id(candidate.effect_id)})


def trains_assignee(decision: Decision, item: WorkItem) -> bool:
    """Whether the decision assigns training to the work item's assignee (work-driven) rather
    than placing an item in it: `lms.assignment` decided for a ticket or a pull request."""
    return decision.form == EmbeddingForm.LMS_ASSIGNMENT and item.system != System.LMS


def _past_budget(
    engine: Engine, item: WorkItem, current: list[Placement], decisions: list[Decision]
) -> frozenset[str]:
    """The lessons to group: those placed once the work item shows as many items of their own
    as its team's fatigue budget allows (required lessons still go in, grouped)."""
    budget = engine.rule_set.team_budget(item.team).max_items_per_work_item
    shown = sum(1 for p in current if p.state in _SHOWN and not p.grouped)
    return grouped(decisions, budget=budget, shown=shown)


def make_handler(active: ActiveRules) -> Handler:
    """The route stage, bound to the rule set in force."""

    def handle(ctx: StageContext, payload: dict[str, Any]) -> None:
        ref = payload.get("ref")
        if not isinstance(ref, str):
            raise PayloadError("route message without a work item ref")
        item = work_items.get(ctx.session, ref, for_update=True)
        if item is None:
            raise PayloadError(f"work item {ref!r} is not stored")
        engine = active.engine(ctx.session)
        if engine is None:
            return
        current = placements.for_work_item(ctx.session, ref)
        placed = {p.lesson_id for p in current}
        routing = engine.route(item, already_placed=placed)
        rules_by_id = _rules_by_id(engine.rule_set)
        flagged = flags.open_subjects(ctx.session, "rule")
        held = held_back(engine, item, routing, placed)
        waiting = {
            d.lesson_id
            for d in routing.placements
            if d.rule_id in flagged
            and rules_by_id[d.rule_id].flag_action == FlagAction.SUPPRESS_ADVISORY
            and d.mandate == Mandate.INVITED
        }
        # The fatigue budget counts what the work item shows: training goes to its assignee.
        shown_here = [
            d
            for d in routing.placements
            if d.lesson_id not in waiting and not trains_assignee(d, item)
        ]
        to_group = _past_budget(engine, item, current, shown_here)
        trained: set[str] = set()
        # Audit entries in decision order; placements written together once all are planned.
        steps: list[tuple[Decision, Placement | None]] = []
        for decision in routing.placements:
            rule = rules_by_id[decision.rule_id]
            if decision.lesson_id in waiting:
                # The rule is flagged for revision: its advice waits until the flag is cleared.
                steps.append((decision, None))
                held[decision.lesson_id] = (
                    NotReached.SUPPRESSED.value,
                    f"{decision.rule_id} is flagged for revision (suppress_advisory)",
                )
                continue
            lesson = engine.by_id[decision.lesson_id]
            if trains_assignee(decision, item):
                learner = _train_assignee(ctx, item, decision, rule, lesson)
                if learner is not None:
                    trained.add(learner)
                continue
            text = decision.text(lesson, item, rule)
            steps.append(
                (
                    decision,
                    planned_placement(decision, ref, text, ctx.now, decision.lesson_id in to_group),
                )
            )
        stored = iter(placements.add_many(ctx.session, [c for _, c in steps if c is not None]))
        planned = 0
        for decision, candidate in steps:
            lesson_ref = f"{decision.lesson_id}@{decision.lesson_version}"
            if candidate is None:
                audit.record(
                    ctx.session,
                    actor=ACTOR,
                    action="placement.suppressed_by_flag",
                    subject=ref,
                    details={"lesson": lesson_ref, "rule": decision.rule_id},
                    now=ctx.now,
                )
                continue
            placed_now = next(stored)
            planned += 1
            audit.record(
                ctx.session,
                actor=ACTOR,
                action="placement.planned",
                subject=ref,
                details={
                    "placement": placed_now.id,
                    "lesson": lesson_ref,
                    "rule": decision.rule_id,
                    "rule_set_version": decision.rule_set_version,
                    "form": decision.form.value,
                    "mandate": decision.mandate.value,
                    **({"grouped": True} if placed_now.grouped else {}),
                },
                now=ctx.now,
            )
        _record_held_back(ctx, item, held)
        if planned:
            ctx.emit(EMBED_TOPIC, {"ref": ref}, key=ref)
        for learner in sorted(trained):
            ctx.emit(EMBED_TOPIC, {"ref": learner}, key=learner)

    return handle


def _learner(ctx: StageContext, item: WorkItem) -> WorkItem | None:
    """The learner work item of the work item's assignee (recorded when it changed), or None
    when the assignee is not a member of the team map under that system's login. A member of
    several teams learns as a member of the work item's team when they are in it."""
    if item.assignee is None:
        return None
    found = teams.find(ctx.session, login=(item.system.value, item.assignee))
    if not found:
        return None
    team, member = next(((t, m) for t, m in found if t == item.team), found[0])
    learner = learner_item(team, member)
    work_items.record_if_changed(ctx.session, learner, ctx.now)
    return learner


def _train_assignee(
    ctx: StageContext, item: WorkItem, decision: Decision, rule: Rule, lesson: Lesson
) -> str | None:
    """Work-driven training: plan the `lms.assignment` placement on the learner work item of
    `item`'s assignee, once per (lesson version, learner) however many work items ask for it;
    the learner's ref when a placement was planned now, else None (already assigned, or no
    learner, which is audited)."""
    details = {
        "via": item.ref,
        "lesson": f"{decision.lesson_id}@{decision.lesson_version}",
        "rule": decision.rule_id,
    }
    learner = _learner(ctx, item)
    if learner is None:
        audit.record(
            ctx.session,
            actor=ACTOR,
            action="training.no_learner",
            subject=item.ref,
            details={**details, "system": item.system.value, "assignee": item.assignee},
            now=ctx.now,
        )
        return None
    new = planned_placement(decision, learner.ref, decision.text(lesson, item, rule), ctx.now)
    if placements.get(ctx.session, new.id) is not None:
        return None  # assigned before, lesson-driven or through another work item
    placements.add(ctx.session, new)
    audit.record(
        ctx.session,
        actor=ACTOR,
        action="placement.planned",
        subject=learner.ref,
        details={
            "placement": new.id,
            **details,
            "rule_set_version": decision.rule_set_version,
            "form": decision.form.value,
            "mandate": decision.mandate.value,
        },
        now=ctx.now,
    )
    return learner.ref


def _record_held_back(ctx: StageContext, item: WorkItem, held: Held) -> None:
    """Keep why selected lessons were not placed (compliance names it); one audit entry for
    those that are new or changed."""
    changed = held_back_store.record(ctx.session, item.ref, item.team, held, ctx.now)
    if changed:
        audit.record(
            ctx.session,
            actor=ACTOR,
            action="placement.held_back",
            subject=item.ref,
            details={
                "held_back": {
                    lesson_id: {"reason": reason, "detail": detail}
                    for lesson_id, (reason, detail) in changed.items()
                }
            },
            now=ctx.now,
        )

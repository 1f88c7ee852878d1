"""Stage `route`: decide which published lessons belong in a work item and plan placements."""

import hashlib
from typing import Any

from core.errors import PayloadError
from core.lesson import Mandate
from core.placement import Placement, PlacementState
from router.pipeline import Stage, StageContext
from router.ruleset.active import ActiveRules
from rules.loader import RuleSet
from rules.model import FlagAction, Rule
from store import audit, flags, placements, work_items

TOPIC = "route"
EMBED_TOPIC = "embed"
ACTOR = "cairn:router"


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


def make_handler(active: ActiveRules) -> Stage:
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
        placed = {p.lesson_id for p in placements.for_work_item(ctx.session, ref)}
        routing = engine.route(item, already_placed=placed)
        rules_by_id = _rules_by_id(engine.rule_set)
        flagged = {f.subject for f in flags.listed(ctx.session, open_only=True) if f.kind == "rule"}
        planned = 0
        for decision in routing.placements:
            rule = rules_by_id[decision.rule_id]
            if (
                decision.rule_id in flagged
                and rule.flag_action == FlagAction.SUPPRESS_ADVISORY
                and decision.mandate == Mandate.INVITED
            ):
                # The rule is flagged for revision: its advice waits until the flag is cleared.
                audit.record(
                    ctx.session,
                    actor=ACTOR,
                    action="placement.suppressed_by_flag",
                    subject=ref,
                    details={
                        "lesson": f"{decision.lesson_id}@{decision.lesson_version}",
                        "rule": decision.rule_id,
                    },
                    now=ctx.now,
                )
                continue
            planned += 1
            lesson = engine.by_id[decision.lesson_id]
            text = decision.text(lesson, item, rule)
            due_at = None if decision.due_in is None else ctx.now + decision.due_in
            candidate = Placement(
                id="pending",
                lesson_id=decision.lesson_id,
                lesson_version=decision.lesson_version,
                work_item_ref=ref,
                rule_id=decision.rule_id,
                rule_set_version=decision.rule_set_version,
                form=decision.form,
                mandate=decision.mandate,
                due_at=due_at,
                state=PlacementState.PLANNED,
                text=text,
                created_at=ctx.now,
                updated_at=ctx.now,
            )
            stored = placements.add(
                ctx.session, candidate.model_copy(update={"id": placement_id(candidate.effect_id)})
            )
            audit.record(
                ctx.session,
                actor=ACTOR,
                action="placement.planned",
                subject=ref,
                details={
                    "placement": stored.id,
                    "lesson": f"{decision.lesson_id}@{decision.lesson_version}",
                    "rule": decision.rule_id,
                    "rule_set_version": decision.rule_set_version,
                    "form": decision.form.value,
                    "mandate": decision.mandate.value,
                },
                now=ctx.now,
            )
        if planned:
            ctx.emit(EMBED_TOPIC, {"ref": ref}, key=ref)

    return handle

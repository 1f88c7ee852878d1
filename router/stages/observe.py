"""Stage `observe`: record what an event shows about placed items, re-reading when it is thin.

Keyed by the work item, so observations of one work item are applied one at a time, in order.
Cairn's own edits coming back never get here: the inbound stage drops them.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from connectors.target import Target
from core.errors import PayloadError
from core.feedback import ItemObservation, Observation
from core.work import System, WorkItem
from router.pipeline import Effect, StageContext
from router.stages import feedback
from store import work_items

TOPIC = "observe"


@dataclass(frozen=True, slots=True)
class Plan:
    """What to re-read, and the event that asked for it."""

    target: Target
    item: WorkItem
    observation: Observation


def make_stage(targets: Mapping[System, Target]) -> Effect:
    """The observe stage, bound to the configured targets."""

    def prepare(ctx: StageContext, payload: dict[str, Any]) -> Plan | None:
        try:
            observation = Observation.model_validate(payload.get("observation"), strict=False)
        except ValidationError as exc:
            raise PayloadError(f"observe message with an invalid observation: {exc}") from exc
        item = work_items.get(ctx.session, observation.work_item_ref)
        if item is None:
            return None
        target = targets.get(item.system)
        if observation.items is not None or target is None:
            # The event showed the items (or there is nothing to re-read): record it now.
            feedback.apply(ctx.session, observation, ctx.now)
            return None
        return Plan(target, item, observation)

    def perform(plan: Plan) -> tuple[ItemObservation, ...]:
        return plan.target.observe(plan.item)

    def record(ctx: StageContext, plan: Plan, items: tuple[ItemObservation, ...]) -> None:
        observed = plan.observation.model_copy(update={"items": items})
        feedback.apply(ctx.session, observed, ctx.now)

    return Effect(prepare=prepare, perform=perform, record=record)

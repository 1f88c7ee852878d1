"""Stage `hydrate`: read from the target what a webhook left out, then route the work item.

A work item that already carries a merge check gets it again on its new head commit (a push),
through a re-read by the observe stage.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from connectors.target import Gating, Target
from core.errors import PayloadError
from core.work import System, WorkItem
from router.pipeline import Effect, StageContext
from router.stages import gating
from store import placements, work_items

TOPIC = "hydrate"
ROUTE_TOPIC = "route"


@dataclass(frozen=True, slots=True)
class Plan:
    """The target to read and the work item as the webhook described it."""

    target: Target
    item: WorkItem


def make_stage(targets: Mapping[System, Target]) -> Effect:
    """The hydrate stage, bound to the configured targets."""

    def prepare(ctx: StageContext, payload: dict[str, Any]) -> Plan | None:
        ref = payload.get("ref")
        if not isinstance(ref, str):
            raise PayloadError("hydrate message without a work item ref")
        item = work_items.get(ctx.session, ref)
        if item is None:
            raise PayloadError(f"work item {ref!r} is not stored")
        target = targets.get(item.system)
        if target is None:
            ctx.emit(ROUTE_TOPIC, {"ref": ref}, key=ref)  # route on what the webhook said
            return None
        return Plan(target, item)

    def perform(plan: Plan) -> WorkItem:
        return plan.target.complete(plan.item)

    def record(ctx: StageContext, plan: Plan, completed: WorkItem) -> None:
        if completed.ref != plan.item.ref:
            raise PayloadError(f"target completed {plan.item.ref!r} as {completed.ref!r}")
        work_items.record(ctx.session, completed, ctx.now)
        ctx.emit(ROUTE_TOPIC, {"ref": completed.ref}, key=completed.ref)
        gated = isinstance(plan.target, Gating) and plan.target.gating
        if gated and placements.for_work_item(ctx.session, completed.ref):
            # A push moved the head commit, which has no merge check yet: write it there.
            gating.recheck(ctx.session, completed.ref, ctx.now)

    return Effect(prepare=prepare, perform=perform, record=record)

"""Stage `remind`: one comment on the PR or ticket naming its overdue items, once per window.

The overdue sweep queues a message per work item (keyed by its ref, so it is serialised with
the embeds of that work item). `prepare` picks the placements still overdue and not reminded
within the window; each carries an effect key (placement and reminder number) that the target
reads back before posting, so a retry after a crash or a redelivery posts nothing twice;
`record` sets `reminded_at` and audits `placement.reminded`.
"""

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from connectors.target import Reminder, Reminding, RemindResult, Target
from core.errors import PayloadError
from core.overdue import reminder_due, reminder_key
from core.placement import Placement
from core.work import System, WorkItem
from router.pipeline import REMIND_TOPIC, Effect, StageContext
from router.stages.embed import lesson_link
from store import audit, lessons, placements, work_items

TOPIC = REMIND_TOPIC
ACTOR = "cairn:reminder"
DEFAULT_WINDOW = timedelta(hours=168)
log = logging.getLogger("cairn.remind")


@dataclass(frozen=True, slots=True)
class Plan:
    """One comment: the work item, the target, and the reminders it should name."""

    target: Reminding
    item: WorkItem
    reminders: tuple[Reminder, ...]


def _reminder(ctx: StageContext, placement: Placement, public_url: str) -> Reminder:
    lesson = lessons.get_version(ctx.session, placement.lesson_id, placement.lesson_version)
    return Reminder(
        placement_id=placement.id,
        key=reminder_key(placement),
        title=placement.lesson_id if lesson is None else lesson.title,
        mandate=placement.mandate,
        due_at=placement.due_at or ctx.now,
        lesson_url=lesson_link(public_url, placement.lesson_id),
    )


def make_stage(
    targets: Mapping[System, Target], public_url: str, window: timedelta = DEFAULT_WINDOW
) -> Effect:
    """The remind stage, bound to the configured targets and the reminder window."""

    def prepare(ctx: StageContext, payload: dict[str, Any]) -> Plan | None:
        ref = payload.get("ref")
        if not isinstance(ref, str):
            raise PayloadError("remind message without a work item ref")
        item = work_items.get(ctx.session, ref)
        if item is None:
            raise PayloadError(f"work item {ref!r} is not stored")
        target = targets.get(item.system)
        if not isinstance(target, Reminding):
            log.info("no %s target posts reminders; %s is not reminded", item.system, ref)
            return None
        due = [
            p
            for p in placements.for_work_item(ctx.session, ref)
            if reminder_due(p, ctx.now, window)
        ]
        if not due:
            return None  # ticked, reminded meanwhile, or a redelivery of a done reminder
        return Plan(target, item, tuple(_reminder(ctx, p, public_url) for p in due))

    def perform(plan: Plan) -> RemindResult:
        return plan.target.remind(plan.item, plan.reminders)

    def record(ctx: StageContext, plan: Plan, result: RemindResult) -> None:
        for reminder in plan.reminders:
            placement = placements.get(ctx.session, reminder.placement_id)
            if reminder.key not in result.reminded or placement is None:
                continue
            if reminder_key(placement) != reminder.key:
                continue  # recorded by an earlier run of this message
            placements.update(
                ctx.session,
                placement.model_copy(
                    update={"reminded_at": ctx.now, "reminders": placement.reminders + 1}
                ),
            )
            audit.record(
                ctx.session,
                actor=ACTOR,
                action="placement.reminded",
                subject=plan.item.ref,
                details={
                    "placement": placement.id,
                    "lesson": f"{placement.lesson_id}@{placement.lesson_version}",
                    "due_at": reminder.due_at.isoformat(),
                    "reminder": placement.reminders + 1,
                    "key": reminder.key,
                    "comment": result.comment,
                    "writes": result.writes,
                    "reads": result.reads,
                },
                now=ctx.now,
            )

    return Effect(prepare=prepare, perform=perform, record=record)

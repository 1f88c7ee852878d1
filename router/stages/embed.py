"""Stage `embed`: make a work item show its placed lessons, in one coalesced target call.

Messages are keyed by the work item ref, so writes to one target are serialised. The target
reads before it writes, which makes a retry after a crash write nothing twice.
"""

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from connectors.target import EmbedEntry, EmbedResult, Gating, Target
from core.errors import PayloadError
from core.lesson import Lesson
from core.placement import Placement, PlacementState
from core.work import System, WorkItem
from router.pipeline import Effect, StageContext
from router.stages import revision
from router.stages.gating import Gates, annotate, default_gates
from store import audit, lessons, placements, work_items

TOPIC = "embed"
ACTOR = "cairn:embedder"
log = logging.getLogger("cairn.embed")

_SHOWN = frozenset(
    {
        PlacementState.PLANNED,
        PlacementState.EMBEDDED,
        PlacementState.COMPLETED,
        PlacementState.DISMISSED,
        PlacementState.OVERDUE,
    }
)


@dataclass(frozen=True, slots=True)
class Plan:
    """One target call: the work item, every entry it should show, and the target."""

    target: Target
    item: WorkItem
    entries: tuple[EmbedEntry, ...]


def _needs_call(placement: Placement) -> bool:
    removal = placement.state == PlacementState.WITHDRAWN and placement.handle is not None
    return placement.state == PlacementState.PLANNED or removal


def lesson_link(public_url: str, lesson_id: str) -> str:
    """The dashboard page of a lesson, the link placed beside each item."""
    return f"{public_url.rstrip('/')}/ui/lessons/{quote(lesson_id, safe='')}"


def work_link(public_url: str, ref: str) -> str:
    """The dashboard page listing the lessons placed in one work item (a grouped item's link)."""
    return f"{public_url.rstrip('/')}/ui/work/{quote(ref, safe='')}"


def _entry(placement: Placement, lesson: Lesson | None, public_url: str) -> EmbedEntry:
    title = placement.lesson_id if lesson is None else lesson.title
    return EmbedEntry(
        placement_id=placement.id,
        lesson_id=placement.lesson_id,
        lesson_version=placement.lesson_version,
        title=title,
        text=placement.text or (title if lesson is None else lesson.statement),
        rule_id=placement.rule_id,
        mandate=placement.mandate,
        form=placement.form,
        lesson_url=lesson_link(public_url, placement.lesson_id),
        due_at=placement.due_at,
        withdrawn=placement.state == PlacementState.WITHDRAWN,
        grouped=placement.grouped,
        list_url=work_link(public_url, placement.work_item_ref) if placement.grouped else None,
        handle=placement.handle,
        revised_from=placement.placed_version,
        reopened=placement.reopened,
        modules=()
        if lesson is None or lesson.training is None
        else tuple(sorted(lesson.training.modules.items())),
    )


def shown_entries(ctx: StageContext, ref: str, public_url: str) -> tuple[EmbedEntry, ...]:
    """The entries a work item shows now (its placed items, none withdrawn)."""
    current = placements.for_work_item(ctx.session, ref)
    live = [p for p in current if p.state in _SHOWN]
    found = lessons.get_versions(ctx.session, ((p.lesson_id, p.lesson_version) for p in live))
    return tuple(_entry(p, found.get((p.lesson_id, p.lesson_version)), public_url) for p in live)


def _revise(ctx: StageContext, item: WorkItem, found: Any, rules: revision.Rules) -> bool:
    """Apply a message's `revision` ({lesson, version}); True when the message carries one (the
    target is called even when a retry finds the placements already revised: it reads first)."""
    if found is None:
        return False
    lesson_id = found.get("lesson") if isinstance(found, dict) else None
    version = found.get("version") if isinstance(found, dict) else None
    if not isinstance(lesson_id, str) or not isinstance(version, int):
        raise PayloadError("embed message with a malformed revision")
    revision.apply(ctx.session, item, lesson_id, version, rules, ctx.now)
    return True


def make_stage(
    targets: Mapping[System, Target],
    public_url: str,
    gates: Gates = default_gates,
    rules: revision.Rules = revision.no_rules,
) -> Effect:
    """The embed stage, bound to the configured targets; `gates` gives each rule's merge gate,
    `rules` each rule's `on_revision` (a message with `revision` brings placements to it)."""

    def prepare(ctx: StageContext, payload: dict[str, Any]) -> Plan | None:
        ref = payload.get("ref")
        if not isinstance(ref, str):
            raise PayloadError("embed message without a work item ref")
        item = work_items.get(ctx.session, ref)
        if item is None:
            raise PayloadError(f"work item {ref!r} is not stored")
        target = targets.get(item.system)
        revised = _revise(ctx, item, payload.get("revision"), rules)
        current = placements.for_work_item(ctx.session, ref)
        if target is None or not (revised or any(_needs_call(p) for p in current)):
            if target is None and current:
                log.info("no %s target configured; %s keeps planned placements", item.system, ref)
            return None
        shown = [
            p for p in current if p.state in _SHOWN or _needs_call(p)
        ]  # withdrawn items still in the target are sent so the target removes them
        found = lessons.get_versions(ctx.session, ((p.lesson_id, p.lesson_version) for p in shown))
        entries = tuple(
            _entry(p, found.get((p.lesson_id, p.lesson_version)), public_url) for p in shown
        )
        if isinstance(target, Gating) and target.gating:
            entries = annotate(ctx.session, item, entries, gates, ctx.now)
        return Plan(target, item, entries)

    def perform(plan: Plan) -> EmbedResult:
        return plan.target.embed(plan.item, plan.entries)

    def record(ctx: StageContext, plan: Plan, result: EmbedResult) -> None:
        embedded, removed, failed = [], [], []
        changed: list[Placement] = []
        asked = {entry.placement_id for entry in plan.entries}
        for placement in placements.for_work_item(ctx.session, plan.item.ref):
            if placement.id not in asked:
                continue  # planned while the target was called: its own embed message follows
            handle = result.handles.get(placement.id)
            if placement.state == PlacementState.PLANNED:
                if handle is None:
                    state, reason = PlacementState.FAILED, "the target did not take the item"
                    failed.append(placement.id)
                else:
                    state, reason = PlacementState.EMBEDDED, None
                    embedded.append(placement.id)
                update: dict[str, Any] = {"state": state, "handle": handle, "reason": reason}
            elif placement.state == PlacementState.WITHDRAWN and placement.handle is not None:
                update = {"handle": None}
                removed.append(placement.id)
            else:
                continue
            changed.append(placement.model_copy(update={**update, "updated_at": ctx.now}))
        placements.update_many(ctx.session, changed)
        audit.record(
            ctx.session,
            actor=ACTOR,
            action="placement.embedded",
            subject=plan.item.ref,
            details={
                "embedded": embedded,
                "removed": removed,
                "failed": failed,
                "writes": result.writes,
                "reads": result.reads,
            },
            now=ctx.now,
        )
        if getattr(result, "edited_by_hand", False):  # a template's section (see diffuse)
            audit.record(
                ctx.session,
                actor=ACTOR,
                action="template.edited_by_hand",
                subject=plan.item.ref,
                details={
                    "pull": getattr(result, "pull", None),
                    "path": getattr(result, "path", None),
                },
                now=ctx.now,
            )

    return Effect(prepare=prepare, perform=perform, record=record)

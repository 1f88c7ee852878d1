"""Stage `inbound`: turn an accepted webhook delivery into stored incidents and work items."""

from collections.abc import Callable, Collection, Mapping
from typing import Any

from connectors.registry import SOURCES
from core.capture import CAPTURING
from core.errors import PayloadError
from core.events import FeedbackEvent, IncidentEvent, WorkItemEvent
from core.incident import updated
from core.recurrence import CHECKED as RECURRENCE_CHECKED
from core.work import System
from core.work_capture import CaptureEvent
from router.pipeline import Handler, StageContext
from router.stages.diffuse import KEY as DIFFUSE_KEY
from router.stages.diffuse import TOPIC as DIFFUSE_TOPIC
from store import audit, inbox, incidents, work_items

TOPIC = "inbound"
HYDRATE_TOPIC = "hydrate"
CAPTURE_TOPIC = "capture"
CAPTURE_WORK_TOPIC = "capture_work"
ENRICH_TOPIC = "enrich"
OBSERVE_TOPIC = "observe"
RECURRENCE_TOPIC = "recurrence"
ACTOR = "cairn:pipeline"


def make_handler(
    own_actors: Mapping[System, str | None],
    enriched: Collection[str],
    templates: Callable[[], bool],
    route: Handler,
) -> Handler:
    """The inbound stage; `own_actors` are the accounts Cairn writes to each target as,
    incidents from the `enriched` sources are read from their tracker before capture,
    `templates` says whether template rules are in force (a new repository is then diffused),
    and `route` is the route stage's handler.

    A work item the delivery fully describes is routed in this same transaction by `route`
    rather than through a `route` message: one message, one claim and one commit fewer per
    event. Routing locks the work item's row first (`work_items.get(for_update=True)`), so
    two deliveries about one work item still route one after the other, each from the state
    the other committed.
    """

    def handle(ctx: StageContext, payload: dict[str, Any]) -> None:
        _inbound(ctx, payload, own_actors, enriched, templates, route)

    return handle


def _inbound(
    ctx: StageContext,
    payload: dict[str, Any],
    own_actors: Mapping[System, str | None],
    enriched: Collection[str],
    templates: Callable[[], bool],
    route: Handler,
) -> None:
    """Parse the delivery with its source's parser and record what it says."""
    inbox_id = payload.get("inbox_id")
    if not isinstance(inbox_id, int):
        raise PayloadError("inbound message without an integer inbox_id")
    delivery = inbox.get(ctx.session, inbox_id)
    if delivery is None:
        raise PayloadError(f"inbox row {inbox_id} does not exist")
    spec = SOURCES.get(delivery.source)
    if spec is None:
        raise PayloadError(f"inbox row {inbox_id} has unknown source {delivery.source!r}")
    for event in spec.parse(delivery.headers, delivery.body):
        details = {"inbox_id": inbox_id, "source": delivery.source}
        if isinstance(event, IncidentEvent):
            stored = incidents.get(ctx.session, event.incident.ref)
            incident = event.incident if stored is None else updated(stored, event.incident)
            created = incidents.upsert(ctx.session, incident, ctx.now)
            if event.incident.status in RECURRENCE_CHECKED:
                ref = event.incident.ref
                ctx.emit(RECURRENCE_TOPIC, {"ref": ref}, key=ref)
            if event.incident.status in CAPTURING:
                ref = event.incident.ref
                topic = ENRICH_TOPIC if event.incident.source in enriched else CAPTURE_TOPIC
                ctx.emit(topic, {"ref": ref}, key=ref)
            audit.record(
                ctx.session,
                actor=ACTOR,
                action="incident.recorded",
                subject=event.incident.ref,
                details={**details, "created": created, "status": event.incident.status.value},
                now=ctx.now,
            )
        elif isinstance(event, WorkItemEvent):
            created = work_items.record(ctx.session, event.work_item, ctx.now)
            ref = event.work_item.ref
            project = event.work_item.project
            if (
                created
                and event.work_item.system == System.GITHUB
                and project
                and templates()
                and work_items.first_of_project(ctx.session, System.GITHUB, project, ref)
            ):
                # A repository Cairn had not seen: its template gets the lessons published
                # before (`router.stages.diffuse`).
                ctx.emit(DIFFUSE_TOPIC, {"repository": project}, key=DIFFUSE_KEY)
            audit.record(
                ctx.session,
                actor=ACTOR,
                action="work_item.recorded",
                subject=event.work_item.ref,
                details={**details, "created": created},
                now=ctx.now,
            )
            if event.complete:
                ctx.emit(HYDRATE_TOPIC, {"ref": ref}, key=ref)
            else:
                route(ctx, {"ref": ref})
        elif isinstance(event, FeedbackEvent):
            _feedback(ctx, event, own_actors)
        elif isinstance(event, CaptureEvent):
            ref = event.document.ref
            ctx.emit(
                CAPTURE_WORK_TOPIC, {"document": event.document.model_dump(mode="json")}, key=ref
            )
    inbox.mark_processed(ctx.session, inbox_id, ctx.now)


def _feedback(
    ctx: StageContext, event: FeedbackEvent, own_actors: Mapping[System, str | None]
) -> None:
    """Record what the event shows; ask for a re-read when it does not show the items."""
    observation = event.observation
    ref = observation.work_item_ref
    item = work_items.get(ctx.session, ref)
    if item is None:
        return  # not a work item Cairn placed anything in
    own_actor = own_actors.get(item.system)
    if own_actor is not None and observation.actor == own_actor:
        return  # Cairn's own edit coming back
    if observation.items is None and not (observation.body_changed or observation.closure):
        return  # nothing about the items changed
    # Applied by the observe stage, keyed by the work item: a tick and a merge arriving
    # together are recorded one after the other, never both against the same old state.
    ctx.emit(OBSERVE_TOPIC, {"observation": observation.model_dump(mode="json")}, key=ref)

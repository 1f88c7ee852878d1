"""Stage `inbound`: turn an accepted webhook delivery into stored incidents and work items."""

from typing import Any

from connectors.registry import SOURCES
from core.capture import CAPTURING
from core.errors import PayloadError
from core.events import IncidentEvent, WorkItemEvent
from router.pipeline import StageContext
from store import audit, inbox, incidents, work_items

TOPIC = "inbound"
ROUTE_TOPIC = "route"
CAPTURE_TOPIC = "capture"
ACTOR = "cairn:pipeline"


def handle(ctx: StageContext, payload: dict[str, Any]) -> None:
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
            created = incidents.upsert(ctx.session, event.incident, ctx.now)
            if event.incident.status in CAPTURING:
                ref = event.incident.ref
                ctx.emit(CAPTURE_TOPIC, {"ref": ref}, key=ref)
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
            ctx.emit(ROUTE_TOPIC, {"ref": event.work_item.ref}, key=event.work_item.ref)
            audit.record(
                ctx.session,
                actor=ACTOR,
                action="work_item.recorded",
                subject=event.work_item.ref,
                details={**details, "created": created},
                now=ctx.now,
            )
    inbox.mark_processed(ctx.session, inbox_id, ctx.now)

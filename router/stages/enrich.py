"""Stage `enrich`: read an incident's tracker for what the webhook left out, then capture it."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from connectors.base import Enricher
from core.errors import PayloadError
from core.incident import Incident
from router.pipeline import Effect, StageContext
from store import audit, incidents

TOPIC = "enrich"
CAPTURE_TOPIC = "capture"
ACTOR = "cairn:enricher"


@dataclass(frozen=True, slots=True)
class Plan:
    """The tracker to read and the incident as stored."""

    enricher: Enricher
    incident: Incident


def make_stage(enrichers: Mapping[str, Enricher]) -> Effect:
    """The enrich stage, bound to the trackers whose API access is configured."""

    def prepare(ctx: StageContext, payload: dict[str, Any]) -> Plan | None:
        ref = payload.get("ref")
        if not isinstance(ref, str):
            raise PayloadError("enrich message without an incident ref")
        incident = incidents.get(ctx.session, ref)
        if incident is None:
            raise PayloadError(f"incident {ref!r} is not stored")
        enricher = enrichers.get(incident.source)
        if enricher is None:
            ctx.emit(CAPTURE_TOPIC, {"ref": ref}, key=ref)  # capture what the webhook said
            return None
        return Plan(enricher, incident)

    def perform(plan: Plan) -> Incident:
        return plan.enricher.enrich(plan.incident)

    def record(ctx: StageContext, plan: Plan, enriched: Incident) -> None:
        if enriched.ref != plan.incident.ref:
            raise PayloadError(f"enriching {plan.incident.ref!r} returned {enriched.ref!r}")
        current = incidents.get(ctx.session, enriched.ref)
        if current is not None and current.status != plan.incident.status:
            # A newer webhook moved the incident on meanwhile: keep its status and timestamps.
            enriched = enriched.model_copy(
                update={"status": current.status, "resolved_at": current.resolved_at}
            )
        incidents.upsert(ctx.session, enriched, ctx.now)
        audit.record(
            ctx.session,
            actor=ACTOR,
            action="incident.enriched",
            subject=enriched.ref,
            details={
                "contributing_factors": len(enriched.contributing_factors),
                "action_items": len(enriched.action_items),
                "postmortem": enriched.postmortem_url is not None,
            },
            now=ctx.now,
        )
        ctx.emit(CAPTURE_TOPIC, {"ref": enriched.ref}, key=enriched.ref)

    return Effect(prepare=prepare, perform=perform, record=record)

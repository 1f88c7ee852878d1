"""Pipeline stages, one module each, and the table of topics they handle."""

from collections.abc import Mapping
from datetime import timedelta

from connectors.base import Enricher
from connectors.target import Target
from core.work import System
from router.pipeline import Stage
from router.ruleset.active import ActiveRules
from router.stages import (
    capture,
    embed,
    enrich,
    hydrate,
    inbound,
    observe,
    recurrence,
    remind,
    route,
)

DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"


def build_stages(
    rules: ActiveRules,
    targets: Mapping[System, Target] | None = None,
    *,
    enrichers: Mapping[str, Enricher] | None = None,
    public_url: str = DEFAULT_PUBLIC_URL,
    reminder_window: timedelta = remind.DEFAULT_WINDOW,
) -> Mapping[str, Stage]:
    """Every topic and its handler, bound to this process's services."""
    targets = dict(targets or {})
    enrichers = dict(enrichers or {})
    own_actors = {system: target.own_actor for system, target in targets.items()}
    return {
        inbound.TOPIC: inbound.make_handler(own_actors, frozenset(enrichers)),
        enrich.TOPIC: enrich.make_stage(enrichers),
        capture.TOPIC: capture.handle,
        route.TOPIC: route.make_handler(rules),
        hydrate.TOPIC: hydrate.make_stage(targets),
        embed.TOPIC: embed.make_stage(targets, public_url),
        observe.TOPIC: observe.make_stage(targets),
        recurrence.TOPIC: recurrence.handle,
        remind.TOPIC: remind.make_stage(targets, public_url, reminder_window),
    }

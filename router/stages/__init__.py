"""Pipeline stages, one module each, and the table of topics they handle."""

from collections.abc import Mapping, Sequence
from datetime import timedelta

from connectors.base import Enricher
from connectors.target import Target
from core.work import System
from core.work_capture import CaptureConfig
from router.pipeline import Stage
from router.ruleset.active import ActiveRules
from router.stages import (
    capture,
    capture_work,
    diffuse,
    embed,
    enrich,
    gating,
    hydrate,
    inbound,
    observe,
    recurrence,
    remind,
    revision,
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
    capture_settings: capture_work.CaptureSettings | None = None,
    readers: Mapping[str, capture_work.SourceReader] | None = None,
    template_repositories: Sequence[str] = (),
) -> Mapping[str, Stage]:
    """Every topic and its handler, bound to this process's services; `readers` read work
    sources (system → reader) for capture; `template_repositories` are reached by template
    rules besides the repositories Cairn has seen."""
    targets = dict(targets or {})
    enrichers = dict(enrichers or {})
    own_actors = {system: target.own_actor for system, target in targets.items()}
    default = capture_work.CaptureSettings(CaptureConfig(), {}, public_url)
    gates = gating.gates_of(rules)
    routing = route.make_handler(rules)
    return {
        inbound.TOPIC: inbound.make_handler(
            own_actors, frozenset(enrichers), diffuse.template_rules_in_force(rules), routing
        ),
        enrich.TOPIC: enrich.make_stage(enrichers),
        capture.TOPIC: capture.handle,
        capture_work.TOPIC: capture_work.make_stage(readers or {}, capture_settings or default),
        capture_work.NOTIFY_TOPIC: capture_work.make_notify_stage(readers or {}, public_url),
        route.TOPIC: routing,
        diffuse.TOPIC: diffuse.make_handler(rules, template_repositories),
        hydrate.TOPIC: hydrate.make_stage(targets),
        embed.TOPIC: embed.make_stage(targets, public_url, gates, revision.rules_of(rules)),
        observe.TOPIC: observe.make_stage(targets, public_url, gates),
        recurrence.TOPIC: recurrence.handle,
        remind.TOPIC: remind.make_stage(targets, public_url, reminder_window),
    }

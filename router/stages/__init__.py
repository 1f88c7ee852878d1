"""Pipeline stages, one module each, and the table of topics they handle."""

from collections.abc import Mapping

from router.pipeline import Stage
from router.routing import ActiveRules
from router.stages import capture, inbound, route


def build_stages(rules: ActiveRules) -> Mapping[str, Stage]:
    """Every topic and its handler, bound to this process's services."""
    return {
        inbound.TOPIC: inbound.handle,
        capture.TOPIC: capture.handle,
        route.TOPIC: route.make_handler(rules),
    }

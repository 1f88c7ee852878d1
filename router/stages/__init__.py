"""Pipeline stages, one module each, and the table of topics they handle."""

from collections.abc import Mapping

from router.pipeline import Stage
from router.stages import inbound

STAGES: Mapping[str, Stage] = {
    inbound.TOPIC: inbound.handle,
}

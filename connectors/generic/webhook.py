"""Verify and parse `POST /hooks/generic` deliveries (Standard Webhooks signing).

A body that is not a canonical event (no `type` of incident, work_item or feedback) is mapped
with the YAML file named by `CAIRN_GENERIC_MAPPING` when one is configured (see `mapping`).
"""

import logging
import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from connectors.base import InboundEvent, load_json
from connectors.generic import mapping
from connectors.standard_webhooks import StandardWebhooksVerifier, sign
from core.errors import ConfigurationError, PayloadError, describe_validation_error
from core.events import CanonicalEvent, IncidentEvent

__all__ = ["GenericVerifier", "parse", "sign"]

log = logging.getLogger("cairn.connectors.generic")

_EVENT: TypeAdapter[InboundEvent] = TypeAdapter(CanonicalEvent)
CANONICAL_TYPES = frozenset({"incident", "work_item", "feedback"})
MAPPING_ENV = "CAIRN_GENERIC_MAPPING"
_loaded: dict[str, tuple[int, mapping.FieldMapping]] = {}


class GenericVerifier(StandardWebhooksVerifier):
    """Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<b64>`."""

    setting = "CAIRN_GENERIC_WEBHOOK_SECRET"

    def __init__(self, secret: str) -> None:
        super().__init__(secret)
        active_mapping()  # a broken mapping file stops start-up, like a broken secret


def active_mapping() -> mapping.FieldMapping | None:
    """The mapping `CAIRN_GENERIC_MAPPING` names, re-read when the file changes; None if unset.

    A file that breaks after start-up keeps the last good mapping in force (and is logged).
    """
    name = os.environ.get(MAPPING_ENV, "").strip()
    if not name:
        return None
    path = Path(name)
    previous = _loaded.get(name)
    try:
        stamp = path.stat().st_mtime_ns
        if previous is None or previous[0] != stamp:
            _loaded[name] = (stamp, mapping.load(path))
    except (OSError, ConfigurationError) as exc:
        if previous is None:
            if isinstance(exc, ConfigurationError):
                raise
            raise ConfigurationError(f"{MAPPING_ENV}: cannot read {path}") from exc
        log.warning("%s: keeping the last good mapping: %s", MAPPING_ENV, exc)
    return _loaded[name][1]


def parse(headers: Mapping[str, str], body: bytes) -> list[InboundEvent]:
    """One canonical event per delivery, or what the configured mapping makes of the body."""
    try:
        data = load_json(body)
    except PayloadError:
        data = None
    kind = data.get("type") if isinstance(data, dict) else None
    if isinstance(data, dict) and not (isinstance(kind, str) and kind in CANONICAL_TYPES):
        try:
            found = active_mapping()
        except ConfigurationError as exc:
            raise PayloadError("the generic mapping file is not usable") from exc
        if found is not None:
            try:
                incident = mapping.apply(found, data)
            except ValidationError as exc:
                raise PayloadError(describe_validation_error(exc)) from exc
            return [] if incident is None else [IncidentEvent(type="incident", incident=incident)]
    try:
        return [_EVENT.validate_json(body)]
    except ValidationError as exc:
        raise PayloadError(describe_validation_error(exc, tagged=True)) from exc

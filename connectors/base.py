"""What every inbound connector provides: verify a delivery, then parse it into core events."""

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from core.errors import PayloadError
from core.events import FeedbackEvent, IncidentEvent, WorkItemEvent
from core.incident import Incident

InboundEvent = IncidentEvent | WorkItemEvent | FeedbackEvent


@dataclass(frozen=True, slots=True)
class VerifiedDelivery:
    """A delivery whose signature checked out; `delivery_key` is the sender's de-duplication id."""

    delivery_key: str


class Verifier(Protocol):
    """Checks a delivery's signature on the raw body; raises AuthenticationError when it fails."""

    def verify(self, headers: Mapping[str, str], body: bytes) -> VerifiedDelivery:
        """Return the delivery's de-duplication key, or raise AuthenticationError."""
        ...


Parser = Callable[[Mapping[str, str], bytes], list[InboundEvent]]
"""Turns a delivery into zero or more core events (zero: a known event Cairn ignores).

Raises PayloadError for a body that can never be processed. Needs no secret, so workers that
hold no webhook secrets can parse what ingress accepted.
"""


class Enricher(Protocol):
    """Reads an incident's tracker for what its webhook left out (notes, postmortem links)."""

    def enrich(self, incident: Incident) -> Incident:
        """The incident with the tracker's extra detail merged in; reads only."""
        ...


def load_json(body: bytes) -> Any:
    """A webhook body's JSON, or PayloadError: not JSON (or not UTF-8), nested too deeply, or a
    number longer than Python reads (its digit limit) — never an exception the sender caused."""
    try:
        return json.loads(body)
    except RecursionError as exc:
        raise PayloadError("the body is nested too deeply") from exc
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, the int digit limit
        raise PayloadError("the body is not JSON") from exc

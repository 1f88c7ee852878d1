"""What every inbound connector provides: verify a delivery, then parse it into core events."""

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import (
    BaseModel,
    ConfigDict,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
)

from core.errors import PayloadError
from core.events import FeedbackEvent, IncidentEvent, WorkItemEvent
from core.incident import Incident
from core.work_capture import CaptureEvent

log = logging.getLogger("cairn.connectors.payloads")

InboundEvent = IncidentEvent | WorkItemEvent | FeedbackEvent | CaptureEvent


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


class VendorModel(BaseModel):
    """Base of vendor payload models: parsed tolerantly, so a sender is never refused (and made
    to retry until it gives up) over a field Cairn can do without.

    Unknown fields are ignored. A field with a default whose value does not fit is logged (the
    model, the field and what kind of value it was; never the value) and takes its default; a
    list keeps the entries that fit. Only fields without a default, the ones Cairn needs, make
    a payload invalid.
    """

    model_config = ConfigDict(extra="ignore")

    @field_validator("*", mode="wrap")
    @classmethod
    def _tolerate(
        cls, value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo
    ) -> Any:
        try:
            return handler(value)
        except ValidationError:
            name = info.field_name or ""
            field = cls.model_fields.get(name)
            if field is None or field.is_required():
                raise
            if isinstance(value, list):
                kept = [item for item in value if _fits(handler, item)]
                if len(kept) != len(value):
                    try:
                        found = handler(kept)
                    except ValidationError:
                        pass
                    else:
                        log.info(
                            "%s.%s: skipped %d of %d entries that did not fit",
                            cls.__name__,
                            name,
                            len(value) - len(kept),
                            len(value),
                        )
                        return found
            log.info(
                "%s.%s: an unusable %s was replaced by the default",
                cls.__name__,
                name,
                type(value).__name__,
            )
            return field.get_default(call_default_factory=True)


def _fits(handler: ValidatorFunctionWrapHandler, item: Any) -> bool:
    try:
        handler([item])
    except ValidationError:
        return False
    return True

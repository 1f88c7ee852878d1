"""Verify and parse `POST /hooks/generic` deliveries (Standard Webhooks signing)."""

import base64
import binascii
from collections.abc import Mapping
from datetime import UTC, datetime

from pydantic import TypeAdapter, ValidationError
from standardwebhooks.webhooks import Webhook

from connectors.base import InboundEvent, VerifiedDelivery
from core.errors import (
    AuthenticationError,
    ConfigurationError,
    PayloadError,
    describe_validation_error,
)
from core.events import CanonicalEvent

_EVENT: TypeAdapter[InboundEvent] = TypeAdapter(CanonicalEvent)
_PREFIX = "whsec_"
MIN_SECRET_BYTES, MAX_SECRET_BYTES = 24, 64


class GenericVerifier:
    """Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<b64>`."""

    def __init__(self, secret: str) -> None:
        # The spec's secrets are `whsec_` + base64 of 24 to 64 random bytes; anything else is a
        # configuration mistake (a placeholder, a password) and must not pass as a signing key.
        key = secret.removeprefix(_PREFIX) if secret.startswith(_PREFIX) else None
        try:
            raw = base64.b64decode(key, validate=True) if key else b""
        except binascii.Error:
            raw = b""
        if not MIN_SECRET_BYTES <= len(raw) <= MAX_SECRET_BYTES:
            raise ConfigurationError(
                "CAIRN_GENERIC_WEBHOOK_SECRET must be whsec_ followed by the base64 of "
                f"{MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} random bytes"
            )
        self._webhook = Webhook(raw)

    def __repr__(self) -> str:
        return "GenericVerifier(secret=***)"

    def verify(self, headers: Mapping[str, str], body: bytes) -> VerifiedDelivery:
        """Check signature and timestamp (±5 minutes); every failure is an AuthenticationError."""
        lowered = {k.lower(): v for k, v in headers.items()}
        try:
            self._webhook.verify(body, lowered, json_parse=False)
        except Exception as exc:
            # The reference library raises ValueError/binascii.Error on malformed headers and
            # UnicodeDecodeError on non-UTF-8 bodies; all of them mean "not verified".
            known = exc.__class__.__name__ == "WebhookVerificationError"
            raise AuthenticationError(
                str(exc) if known else "malformed signature headers or body"
            ) from exc
        return VerifiedDelivery(delivery_key=lowered["webhook-id"])


def parse(headers: Mapping[str, str], body: bytes) -> list[InboundEvent]:
    """One canonical event per delivery."""
    try:
        return [_EVENT.validate_json(body)]
    except ValidationError as exc:
        raise PayloadError(describe_validation_error(exc, tagged=True)) from exc


def sign(
    secret: str, msg_id: str, body: bytes, timestamp: datetime | None = None
) -> dict[str, str]:
    """Headers a Standard Webhooks sender attaches (used by the demo, tests and senders)."""
    # The reference library signs the wall-clock digits as if they were UTC: convert first.
    when = (timestamp or datetime.now(UTC)).astimezone(UTC)
    signature = Webhook(secret).sign(msg_id=msg_id, timestamp=when, data=body.decode())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
    }

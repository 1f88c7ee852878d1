"""Verify and parse `POST /hooks/generic` deliveries (Standard Webhooks signing)."""

from collections.abc import Mapping
from datetime import UTC, datetime

from pydantic import TypeAdapter, ValidationError
from standardwebhooks.webhooks import Webhook

from connectors.base import InboundEvent, VerifiedDelivery
from core.errors import AuthenticationError, ConfigurationError, PayloadError
from core.events import CanonicalEvent

_EVENT: TypeAdapter[InboundEvent] = TypeAdapter(CanonicalEvent)


def describe_validation_error(exc: ValidationError, limit: int = 5) -> str:
    """A short summary of what was wrong: field paths and messages, never the input itself."""
    parts = []
    for error in exc.errors(include_input=False, include_url=False)[:limit]:
        where = ".".join(str(p) for p in error["loc"]) or "body"
        parts.append(f"{where}: {error['msg']}")
    more = exc.error_count() - limit
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


class GenericVerifier:
    """Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<b64>`."""

    def __init__(self, secret: str) -> None:
        try:
            self._webhook = Webhook(secret)
        except Exception as exc:
            # Name the setting, never the value.
            raise ConfigurationError(
                "CAIRN_GENERIC_WEBHOOK_SECRET is not a valid whsec_<base64> secret"
            ) from exc

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
        raise PayloadError(describe_validation_error(exc)) from exc


def sign(
    secret: str, msg_id: str, body: bytes, timestamp: datetime | None = None
) -> dict[str, str]:
    """Headers a Standard Webhooks sender attaches (used by the demo, tests and senders)."""
    when = timestamp or datetime.now(UTC)
    signature = Webhook(secret).sign(msg_id=msg_id, timestamp=when, data=body.decode())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
    }

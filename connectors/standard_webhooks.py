"""Standard Webhooks signatures (the scheme Svix sends), shared by the sources that use it."""

import base64
import binascii
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import ClassVar

from standardwebhooks.webhooks import Webhook

from connectors.base import VerifiedDelivery
from core.errors import AuthenticationError, ConfigurationError

_PREFIX = "whsec_"
MIN_SECRET_BYTES, MAX_SECRET_BYTES = 24, 64
_SVIX_ALIASES = ("id", "timestamp", "signature")


class StandardWebhooksVerifier:
    """`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<b64>` (±5 minutes)."""

    setting: ClassVar[str] = "the webhook secret"
    """The variable named in configuration errors."""
    svix_headers: ClassVar[bool] = False
    """Also read Svix's unbranded `svix-id`/`svix-timestamp`/`svix-signature` headers."""

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
                f"{self.setting} must be whsec_ followed by the base64 of "
                f"{MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} random bytes"
            )
        self._webhook = Webhook(raw)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(secret=***)"

    def verify(self, headers: Mapping[str, str], body: bytes) -> VerifiedDelivery:
        """Check signature and timestamp; every failure is an AuthenticationError."""
        lowered = {k.lower(): v for k, v in headers.items()}
        if self.svix_headers:
            for part in _SVIX_ALIASES:
                if f"webhook-{part}" not in lowered and f"svix-{part}" in lowered:
                    lowered[f"webhook-{part}"] = lowered[f"svix-{part}"]
        try:
            self._webhook.verify(body, lowered, json_parse=False)
        except Exception as exc:
            # The reference library raises ValueError/binascii.Error on malformed headers; all
            # of them mean "not verified". It signs the body's bytes as received, so a body that
            # is not UTF-8 can be authentic (and is then refused by parsing, as a bad payload).
            known = exc.__class__.__name__ == "WebhookVerificationError"
            raise AuthenticationError(
                str(exc) if known else "malformed signature headers or body"
            ) from exc
        return VerifiedDelivery(delivery_key=lowered["webhook-id"])


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

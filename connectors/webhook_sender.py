"""Outbound webhooks signed with Standard Webhooks (`webhook-id`, `-timestamp`, `-signature`).

Cairn sends as well as receives them: the overdue digest goes to a URL the operator names. The
message id stays the same on every retry, so a receiver de-duplicates on it; the retries are
`connectors.retrying.send` (tenacity: 429, 5xx and network failures, honouring Retry-After).
"""

import json
from typing import Any
from urllib.parse import urlsplit

import httpx

from connectors.retrying import RetryPolicy, send
from connectors.standard_webhooks import StandardWebhooksVerifier, sign
from core.errors import ConfigurationError


class WebhookSender:
    """POSTs JSON to one URL, signed with one `whsec_…` secret; the secret never appears in a
    repr, a log line or an error."""

    def __init__(
        self,
        url: str,
        secret: str,
        *,
        setting: str = "the webhook secret",
        policy: RetryPolicy | None = None,
        timeout: float = 10.0,
    ) -> None:
        try:
            StandardWebhooksVerifier(secret)  # the rules Cairn's own sources' secrets follow
        except ConfigurationError as exc:
            raise ConfigurationError(f"{setting}: {exc}") from None
        self.url = url
        self.policy = policy or RetryPolicy()
        self.timeout = timeout
        self._secret = secret

    def __repr__(self) -> str:
        # Only the host: a webhook URL's path is often a credential too (chat services).
        return f"WebhookSender(host={urlsplit(self.url).netloc!r}, secret=***)"

    def post(self, msg_id: str, payload: dict[str, Any]) -> int:
        """Send `payload` as message `msg_id`; returns the receiver's 2xx status. Failures after
        the retries are Cairn errors (TransientError, AuthenticationError, PayloadError)."""
        body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
        headers = sign(self._secret, msg_id, body)
        with httpx.Client(timeout=self.timeout) as client:
            request = client.build_request("POST", self.url, content=body, headers=headers)
            response = send(client, request, self.policy, what="POST a webhook")
        return response.status_code

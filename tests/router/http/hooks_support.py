"""An app with every webhook source enabled, and the signers each sender uses, for hook tests."""

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from pydantic import SecretStr

from connectors import standard_webhooks
from connectors.github import webhook as github
from connectors.jira import webhook as jira
from connectors.pagerduty import webhook as pagerduty
from router.compose import build_runtime
from router.http.app import create_app
from router.settings import Settings
from store import migrate
from store.engine import Database
from store.tables import InboxRow
from tests.connectors.canvas.test_jwt import KID, SIGNING, jwks, token

STANDARD = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
HMAC = "a-webhook-secret-of-some-length"
OPSGENIE = "an-opsgenie-token-of-24-chars-or-more"
XAPI = "an-xapi-push-secret-" + "c" * 24

Signer = Callable[[bytes, str], dict[str, str]]


def standard(body: bytes, msg_id: str) -> dict[str, str]:
    """Standard Webhooks headers for any bytes (the reference signer takes text only)."""
    if not body.isascii():
        try:
            body.decode()
        except UnicodeDecodeError:
            stamp = str(int(time.time()))
            key = base64.b64decode(STANDARD.removeprefix("whsec_"))
            signed = f"{msg_id}.{stamp}.".encode() + body
            digest = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
            return {
                "webhook-id": msg_id,
                "webhook-timestamp": stamp,
                "webhook-signature": f"v1,{digest}",
                "content-type": "application/json",
            }
    return standard_webhooks.sign(STANDARD, msg_id, body)


SIGNERS: dict[str, Signer] = {
    "generic": lambda body, n: standard(body, f"msg_{n}"),
    "incidentio": lambda body, n: standard(body, f"msg_{n}"),
    "pagerduty": lambda body, _n: pagerduty.sign(HMAC, body),
    "opsgenie": lambda _body, _n: {"X-Cairn-Token": OPSGENIE, "Content-Type": "application/json"},
    "github": lambda body, n: github.sign(HMAC, body, event="pull_request", delivery=f"d-{n}"),
    "jira": lambda body, n: jira.sign(HMAC, body, f"id-{n}"),
}
"""Headers that make `body` a genuine delivery from each `/hooks/{source}` sender; `n` makes
the delivery id unique where the sender's scheme carries one."""


def hook_settings(url: str, **overrides: Any) -> Settings:
    """Settings enabling every webhook source, xAPI push and Canvas Live Events."""
    values: dict[str, Any] = {
        "database_url": SecretStr(url),
        "generic_webhook_secret": SecretStr(STANDARD),
        "incidentio_webhook_secret": SecretStr(STANDARD),
        "pagerduty_webhook_secret": SecretStr(HMAC),
        "opsgenie_webhook_token": SecretStr(OPSGENIE),
        "github_webhook_secret": SecretStr(HMAC),
        "jira_webhook_secret": SecretStr(HMAC),
        "xapi_push_secret": SecretStr(XAPI),
        "canvas_live_events_jwks": json.dumps(jwks((KID, SIGNING))),
        "max_body_bytes": 256 * 1024,
        "poll_interval": 0.05,
        **overrides,
    }
    return Settings(**values)


@contextmanager
def hook_app(directory: Path, **overrides: Any) -> Iterator[tuple[TestClient, Database]]:
    """The app on a fresh SQLite database with every inbound source enabled."""
    url = f"sqlite:///{directory / 'cairn.db'}"
    db = Database(url)
    migrate.upgrade(db)
    with TestClient(create_app(build_runtime(hook_settings(url, **overrides)))) as client:
        yield client, db
    db.dispose()


def inbox_rows(db: Database) -> int:
    """How many deliveries the inbox holds."""
    with db.transaction() as session:
        return session.query(InboxRow).count()


def canvas_token(claims: dict[str, Any]) -> str:
    """A Live Event JWT signed with the key the app trusts."""
    return token(claims)


def xapi_headers() -> dict[str, str]:
    """The push credentials `/hooks/xapi` expects."""
    return {"Authorization": f"Bearer {XAPI}", "Content-Type": "application/json"}

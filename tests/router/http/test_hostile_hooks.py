"""Hostile but correctly signed bodies on every webhook source: a 4xx with a reason, never 5xx."""

from collections.abc import Callable, Iterator

import pytest
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

STANDARD = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
HMAC = "a-webhook-secret-of-some-length"
TOKEN = "an-opsgenie-token-of-24-chars-or-more"

Signer = Callable[[bytes, str], dict[str, str]]
SIGNERS: dict[str, Signer] = {
    "generic": lambda body, n: standard_webhooks.sign(STANDARD, f"msg_{n}", body),
    "incidentio": lambda body, n: standard_webhooks.sign(STANDARD, f"msg_{n}", body),
    "pagerduty": lambda body, _n: pagerduty.sign(HMAC, body),
    "opsgenie": lambda _body, _n: {"X-Cairn-Token": TOKEN},
    "github": lambda body, n: github.sign(HMAC, body, event="pull_request", delivery=f"d-{n}"),
    "jira": lambda body, n: jira.sign(HMAC, body, f"id-{n}"),
}
BODIES = {
    "deeply-nested": b'{"event": ' + b"[" * 1500 + b"]" * 1500 + b"}",
    "nested-object": b'{"a": ' * 1500 + b"1" + b"}" * 1500,
    "huge-integer": b'{"event": {"id": ' + b"9" * 5000 + b'}, "id": 1}',
    "top-level-array": b"[1, 2, 3]",
    "top-level-string": b'"just a string"',
    "not-json": b"\x00\x01 not json at all",
}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    url = f"sqlite:///{tmp_path_factory.mktemp('hostile') / 'cairn.db'}"
    db = Database(url)
    migrate.upgrade(db)
    settings = Settings(
        database_url=SecretStr(url),
        generic_webhook_secret=SecretStr(STANDARD),
        incidentio_webhook_secret=SecretStr(STANDARD),
        pagerduty_webhook_secret=SecretStr(HMAC),
        opsgenie_webhook_token=SecretStr(TOKEN),
        github_webhook_secret=SecretStr(HMAC),
        jira_webhook_secret=SecretStr(HMAC),
        max_body_bytes=64 * 1024,
        poll_interval=0.05,
    )
    with TestClient(create_app(build_runtime(settings))) as test_client:
        yield test_client
    db.dispose()


@pytest.mark.parametrize("kind", sorted(BODIES))
@pytest.mark.parametrize("source", sorted(SIGNERS))
def test_a_signed_hostile_body_is_a_clear_4xx(client: TestClient, source: str, kind: str) -> None:
    body = BODIES[kind]
    headers = {"Content-Type": "application/json", **SIGNERS[source](body, f"{source}-{kind}")}
    response = client.post(f"/hooks/{source}", content=body, headers=headers)
    # Either refused with a reason, or (for a source that acknowledges unknown events so the
    # sender does not retry) accepted as something it ignores; never a server error.
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.json()["reason"]

"""No configured secret or token shows in logs, error answers or reprs.

The app runs with every secret configured (webhook secrets and tokens, tracker and LMS
credentials, API tokens, the database password in its URL, the dashboard and proxy secrets),
logging at DEBUG, through a representative flow: genuine, forged and malformed deliveries on
every hook, API calls with good, unknown and malformed tokens, readiness, metrics, an import
that fails. Then everything captured is searched for each secret.
"""

import json
import logging
from collections.abc import Iterator
from urllib.parse import urlsplit

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
from tests.connectors.canvas.test_jwt import KID, SIGNING, jwks
from tests.router.support import DRAFT, FIXTURES, bearer

SECRETS = {
    "generic_webhook_secret": "whsec_" + "R2VuZXJpY1NlY3JldEdlbmVyaWNTZWNyZXQx",
    "incidentio_webhook_secret": "whsec_" + "SW5jaWRlbnRJb1NlY3JldEluY2lkZW50SW8x",
    "pagerduty_webhook_secret": "pd-webhook-secret-7c1e9a",
    "pagerduty_api_token": "pd-api-token-5d2f8b",
    "incidentio_api_key": "io-api-key-9e4a1c",
    "opsgenie_webhook_token": "opsgenie-token-3b8d6f2a9c41e7",
    "github_webhook_secret": "gh-webhook-secret-1a7e3c",
    "github_token": "ghp_tokenvalue4f9b2e",
    "jira_webhook_secret": "jira-webhook-secret-8c3d",
    "jira_api_token": "jira-api-token-2e7f5a",
    "moodle_token": "moodle-token-6a1d9e",
    "canvas_token": "canvas-token-0f4c8b",
    "xapi_password": "xapi-password-7b3e1d",
    "xapi_push_secret": "xapi-push-secret-5c9a2f",
    "metrics_token": "metrics-token-8d2b6e",
    "ui_secret": "ui-secret-value-4e8a1f7c3b9d2e6a",
}
DB_PASSWORD = "db-password-9f3c7a"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest) -> Iterator[str]:
    """The embedded default, and PostgreSQL with a password in its URL (trust auth ignores it,
    so the server accepts it while every log line still has the chance to show it)."""
    if request.param == "sqlite":
        yield request.getfixturevalue("sqlite_url")
        return
    url = urlsplit(request.getfixturevalue("postgres_url"))
    netloc = f"{url.username or 'postgres'}:{DB_PASSWORD}@{url.hostname}:{url.port or 5432}"
    yield url._replace(netloc=netloc).geturl()


def _settings(url: str) -> Settings:
    values = {name: SecretStr(value) for name, value in SECRETS.items()}
    return Settings(
        database_url=SecretStr(url),
        github_api_url="http://127.0.0.1:9/api",
        jira_url="http://127.0.0.1:9/jira",
        jira_email="cairn@example.com",
        moodle_url="http://127.0.0.1:9/moodle",
        canvas_url="http://127.0.0.1:9/canvas",
        lms="moodle",
        xapi_url="http://127.0.0.1:9/lrs",
        xapi_username="cairn",
        canvas_live_events_jwks=json.dumps(jwks((KID, SIGNING))),
        poll_interval=0.05,
        **values,  # type: ignore[arg-type]
    )


def _flow(client: TestClient, token: dict[str, str]) -> list[str]:
    """Requests a client, a sender and an attacker make; the answers' text."""
    body = (FIXTURES / "incident_resolved.json").read_bytes()
    sent = []
    genuine = {
        "generic": standard_webhooks.sign(SECRETS["generic_webhook_secret"], "m-1", body),
        "incidentio": standard_webhooks.sign(SECRETS["incidentio_webhook_secret"], "m-2", body),
        "pagerduty": pagerduty.sign(SECRETS["pagerduty_webhook_secret"], body),
        "opsgenie": {"X-Cairn-Token": SECRETS["opsgenie_webhook_token"]},
        "github": github.sign(
            SECRETS["github_webhook_secret"], body, event="pull_request", delivery="d-1"
        ),
        "jira": jira.sign(SECRETS["jira_webhook_secret"], body, "j-1"),
    }
    for source, headers in genuine.items():
        sent.append(client.post(f"/hooks/{source}", content=body, headers=headers).text)
        forged = {k: v[:-3] + "xyz" for k, v in headers.items()}
        sent.append(client.post(f"/hooks/{source}", content=body, headers=forged).text)
        sent.append(client.post(f"/hooks/{source}", content=b"\xff{", headers=headers).text)
    push = {"Authorization": f"Bearer {SECRETS['xapi_push_secret']}"}
    sent.append(client.post("/hooks/xapi", content=b"[{}]", headers=push).text)
    sent.append(
        client.post("/hooks/xapi", content=b"{}", headers={"Authorization": "Bearer x"}).text
    )
    sent.append(client.post("/hooks/canvas", content=b"not.a.jwt").text)
    for headers in (token, {"Authorization": "Bearer cairn_unknown"}, {"Authorization": "Basic"}):
        sent.append(client.get("/api/v1/me", headers=headers).text)
        sent.append(client.get("/api/v1/queue", headers=headers).text)
    sent.append(client.post("/api/v1/lessons", json=DRAFT, headers=token).text)
    sent.append(client.post("/api/v1/lessons", json={"id": 5}, headers=token).text)
    sent.append(
        client.post(
            "/api/v1/lessons/import",
            content=b"{",
            headers={**token, "Content-Type": "application/json"},
        ).text
    )
    sent.append(client.get("/readyz").text)
    sent.append(
        client.get("/metrics", headers={"Authorization": f"Bearer {SECRETS['metrics_token']}"}).text
    )
    sent.append(client.get("/metrics").text)
    return sent


def test_no_secret_in_logs_answers_or_reprs(
    database: str, caplog: pytest.LogCaptureFixture
) -> None:
    db = Database(database)
    migrate.upgrade(db)
    token = bearer(db, "secrets-admin", "admin")
    api_token = token["Authorization"].removeprefix("Bearer ")
    settings = _settings(database)
    with caplog.at_level(logging.DEBUG):
        runtime = build_runtime(settings)
        with TestClient(create_app(runtime)) as client:
            answers = _flow(client, token)
        reprs = [repr(settings), str(settings), repr(runtime), repr(db), repr(db.engine)]
        reprs += [repr(v) for v in runtime.verifiers.values()]
    db.dispose()
    captured = "\n".join([caplog.text, *answers, *reprs])
    assert "DEBUG" in caplog.text or caplog.records  # the flow was logged
    for name, secret in {**SECRETS, "api token": api_token, "database": DB_PASSWORD}.items():
        assert secret not in captured, f"{name} leaked"
    assert any("accepted" in answer for answer in answers)

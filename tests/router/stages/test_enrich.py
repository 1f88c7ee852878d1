"""Enrichment through the running service: a thin webhook, the tracker read back, one draft."""

import json
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from connectors.pagerduty import webhook as pd
from connectors.pagerduty.client import PagerDutyClient
from connectors.pagerduty.fake import FakePagerDuty
from connectors.retrying import RetryPolicy
from core.incident import IncidentStatus, Severity
from router.compose import build_enrichers
from router.settings import Settings
from store import audit, incidents, lessons
from tests.router.support import drain, serving

FIXTURES = Path(pd.__file__).parent / "fixtures"
SECRET = "pd-subscription-secret-0123456789abcdef"
TOKEN = "pd-api-token-for-enrichment-tests"
REF = "pagerduty:Q2ZN4HG3PVVD5X"
LESSON = "from-pagerduty-q2zn4hg3pvvd5x"


def post(client: Any, name: str) -> int:
    body = (FIXTURES / f"{name}.json").read_bytes()
    headers = {**pd.sign(SECRET, body), "content-type": "application/json"}
    status: int = client.post("/hooks/pagerduty", content=body, headers=headers).status_code
    return status


def test_a_resolved_incident_is_read_back_before_its_draft_is_captured(
    database_url: str, webhook_secret: str
) -> None:
    event = json.loads((FIXTURES / "incident_resolved.json").read_bytes())["event"]
    fake = FakePagerDuty(TOKEN)
    fake.add_incident(event["data"])
    fake.add_note("Q2ZN4HG3PVVD5X", "Contributing factor: worker count doubled in one deploy")
    fake.add_note("Q2ZN4HG3PVVD5X", "Action item: derive the pool size from the worker count")
    fake.server.fail(429, times=1, retry_after="0")
    with fake.running():
        client_ = PagerDutyClient(TOKEN, base_url=fake.url, policy=RetryPolicy())
        settings: dict[str, Any] = {"pagerduty_webhook_secret": SecretStr(SECRET)}
        with serving(
            database_url, webhook_secret, enrichers={"pagerduty": client_}, **settings
        ) as (client, db):
            assert post(client, "incident_resolved") == 202
            drain(db)
            # A later note-only event says the postmortem is done: it must not erase what the
            # full incident said (services, severity) nor capture a second draft.
            assert post(client, "incident_annotated_postmortem") == 202
            drain(db)
            with db.transaction() as session:
                stored = incidents.get(session, REF)
                drafts = lessons.list_lessons(session)
                enriched = audit.entries(session, action="incident.enriched")
        client_.close()
    assert stored is not None
    assert stored.status == IncidentStatus.POSTMORTEM_DONE
    assert stored.services == ("payments-api",)
    assert stored.severity == Severity.CRITICAL  # the note event carries none; it is kept
    assert "worker count doubled in one deploy" in stored.contributing_factors
    assert "derive the pool size from the worker count" in stored.action_items
    [draft] = drafts
    assert draft.id == LESSON
    assert "worker count doubled in one deploy" in draft.context.contributing_conditions
    assert len(enriched) == 2


def test_an_empty_api_token_leaves_enrichment_off_like_an_unset_one() -> None:
    """`CAIRN_PAGERDUTY_API_TOKEN=` (empty) configures no client, as an empty webhook secret
    disables its source; a real token configures one, and its repr hides it."""
    base = {"database_url": "sqlite://"}
    assert build_enrichers(Settings(**base, pagerduty_api_token="", incidentio_api_key="")) == {}
    assert build_enrichers(Settings(**base)) == {}
    configured = build_enrichers(Settings(**base, pagerduty_api_token="pd-token-123"))
    assert list(configured) == ["pagerduty"]
    assert "pd-token-123" not in repr(configured["pagerduty"])

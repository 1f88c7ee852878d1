"""Jira webhook parsing, one test per recorded fixture, and the signature check."""

import hashlib
import hmac
import json
from pathlib import Path

import pytest

from connectors.jira.webhook import JiraVerifier, parse, sign
from core.errors import AuthenticationError, ConfigurationError, PayloadError
from core.events import FeedbackEvent, WorkItemEvent
from core.feedback import Closure

FIXTURES = Path(__file__).parents[3] / "connectors" / "jira" / "fixtures"
SECRET = "jira-webhook-secret-0123456789"
HEADERS = {"X-Atlassian-Webhook-Identifier": "7c6ab1d4-0001"}


def events(name: str) -> list[object]:
    return list(parse(HEADERS, (FIXTURES / f"{name}.json").read_bytes()))


def test_issue_created_is_a_work_item_to_complete() -> None:
    [event] = events("issue_created")
    assert isinstance(event, WorkItemEvent) and event.complete
    item = event.work_item
    assert item.ref == "jira:PAY-42" and item.project == "PAY" and item.type == "Story"
    assert str(item.url) == "https://acme.atlassian.net/browse/PAY-42"
    assert item.labels == ("team:payments", "database")
    assert item.components == ("ledger",)
    assert item.team == "payments"  # from the team:<name> label
    assert item.assignee == "5b10ac8d82e05b22cc7d4ef5"
    assert item.title == "Scale ledger-api workers for Black Friday"


def test_a_description_edit_asks_for_a_re_read() -> None:
    work, feedback = events("issue_updated_description")
    assert isinstance(work, WorkItemEvent) and isinstance(feedback, FeedbackEvent)
    observation = feedback.observation
    assert observation.work_item_ref == "jira:PAY-42"
    assert observation.items is None and observation.body_changed
    assert observation.actor == "5b10ac8d82e05b22cc7d4ef5"
    assert observation.delivery_id == "7c6ab1d4-0001"
    assert observation.closure is None


def test_a_summary_edit_is_only_a_work_item_change() -> None:
    [event] = events("issue_updated_summary")
    assert isinstance(event, WorkItemEvent)


def test_resolving_the_issue_closes_it() -> None:
    _work, feedback = events("issue_updated_resolved")
    assert isinstance(feedback, FeedbackEvent)
    assert feedback.observation.closure == Closure.RESOLVED
    assert feedback.observation.items is None and not feedback.observation.body_changed


def test_a_lesson_subtask_done_is_feedback_on_the_parent() -> None:
    [feedback] = events("subtask_done")
    assert isinstance(feedback, FeedbackEvent)
    assert feedback.observation.work_item_ref == "jira:PAY-42"
    assert feedback.observation.items is None and feedback.observation.closure is None


def test_cairn_creating_its_own_subtask_is_ignored() -> None:
    assert events("subtask_created_by_cairn") == []


def test_cairns_own_edit_carries_its_account_for_the_pipeline_to_drop() -> None:
    _work, feedback = events("issue_updated_by_cairn")
    assert isinstance(feedback, FeedbackEvent)
    assert feedback.observation.actor == "557058:cairn-bot"


@pytest.mark.parametrize("name", ["issue_deleted", "comment_created"])
def test_other_events_are_acknowledged_and_ignored(name: str) -> None:
    assert events(name) == []


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"issue": {}}',
        b'{"webhookEvent": "jira:issue_created"}',
        b'{"webhookEvent": "jira:issue_created", "issue": {"key": "not a key"}}',
    ],
)
def test_malformed_deliveries_are_payload_errors(body: bytes) -> None:
    with pytest.raises(PayloadError):
        parse({}, body)


def test_vendor_payloads_are_tolerant() -> None:
    body = {
        "webhookEvent": "jira:issue_created",
        "issue": {
            "key": "OPS-7",
            "fields": {
                "labels": ["ok", 3, None, "bad\x00label", "x" * 500],
                "components": [{"nope": 1}, {"name": "api"}, "web"],
                "issuetype": None,
                "unknown": {"deep": [1, 2]},
            },
        },
        "extra": True,
    }
    [event] = parse({}, json.dumps(body).encode())
    assert isinstance(event, WorkItemEvent)
    assert event.work_item.labels == ("ok", "bad label", "x" * 200)  # only strings
    assert event.work_item.components == ("api", "web")
    assert event.work_item.type == "Issue" and event.work_item.project == "OPS"


# --- signatures ---------------------------------------------------------------------------------


def test_signature_vectors() -> None:
    body = b'{"webhookEvent":"jira:issue_created"}'
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    verifier = JiraVerifier(SECRET)
    good = {"x-hub-signature": f"sha256={digest}", "x-atlassian-webhook-identifier": "id-1"}
    assert verifier.verify(good, body).delivery_key == "id-1"
    assert sign(SECRET, body, "id-1")["X-Hub-Signature"] == f"sha256={digest}"
    upper = {"X-Hub-Signature": f"SHA256={digest.upper()}"}
    assert verifier.verify(upper, body).delivery_key.startswith("body:")
    for headers in (
        {},
        {"x-hub-signature": digest},
        {"x-hub-signature": "sha256=" + "0" * 64},
        {"x-hub-signature": "sha256=é"},
        {"x-hub-signature": f"sha1={digest}"},
    ):
        with pytest.raises(AuthenticationError):
            verifier.verify(headers, body)
    with pytest.raises(AuthenticationError):
        verifier.verify(good, body + b" ")


def test_the_secret_is_checked_and_never_shown() -> None:
    with pytest.raises(ConfigurationError):
        JiraVerifier("short")
    assert SECRET not in repr(JiraVerifier(SECRET))

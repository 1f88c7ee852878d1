"""Verify and parse `POST /hooks/jira` deliveries (Jira Cloud admin webhooks with a secret).

Events: `jira:issue_created` and `jira:issue_updated` describe a work item (the issue). An update
whose changelog touches the description, a Cairn sub-task (label `cairn-lesson`) changing status,
or the issue being resolved also yields feedback on the parent issue with `items=None`: webhooks
carry the description as REST v2 text, not ADF, so the observe stage re-reads the issue. Every
other well-formed event is acknowledged and ignored. Events Cairn's own account caused carry its
accountId as the observation's actor; the pipeline drops them.

Team: a pure parser cannot read a custom field id setting, so the team comes from a label
`team:<name>` (the first one); the Jira target may fill it from a configured custom field later.
"""

import hashlib
import hmac
import re
from collections.abc import Mapping
from datetime import UTC, datetime

from pydantic import ValidationError

from connectors.base import InboundEvent, VerifiedDelivery, load_json
from connectors.jira.adf import clean
from connectors.jira.models import IssueEvent, IssueFields
from core.errors import (
    AuthenticationError,
    ConfigurationError,
    PayloadError,
    describe_validation_error,
)
from core.events import FeedbackEvent, WorkItemEvent
from core.feedback import Closure, Observation
from core.work import System, WorkItem

SIGNATURE_HEADER = "x-hub-signature"
DELIVERY_HEADER = "x-atlassian-webhook-identifier"
MIN_SECRET_CHARS = 16
ISSUE_EVENTS = frozenset({"jira:issue_created", "jira:issue_updated"})
LESSON_LABEL = "cairn-lesson"
TEAM_PREFIX = "team:"
_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,99}-[0-9]{1,18}$")
_NAME_MAX = 200


class JiraVerifier:
    """`X-Hub-Signature: sha256=<hex>`: HMAC-SHA256 of the raw body with the webhook's secret."""

    def __init__(self, secret: str) -> None:
        if len(secret) < MIN_SECRET_CHARS:
            raise ConfigurationError(
                f"CAIRN_JIRA_WEBHOOK_SECRET must be at least {MIN_SECRET_CHARS} characters"
            )
        self._key = secret.encode()

    def __repr__(self) -> str:
        return "JiraVerifier(secret=***)"

    def verify(self, headers: Mapping[str, str], body: bytes) -> VerifiedDelivery:
        """Check the signature; the delivery key is Jira's webhook identifier."""
        lowered = {k.lower(): v for k, v in headers.items()}
        given = lowered.get(SIGNATURE_HEADER, "").strip()
        if not given.lower().startswith("sha256="):
            raise AuthenticationError("missing or malformed X-Hub-Signature header")
        expected = hmac.new(self._key, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), given[7:].lower().encode("utf-8", "replace")):
            raise AuthenticationError("X-Hub-Signature does not match the body")
        identifier = lowered.get(DELIVERY_HEADER, "").strip()
        # Jira Cloud always sends the identifier (retries reuse it); without one, identical
        # bodies are treated as the same delivery.
        return VerifiedDelivery(identifier or "body:" + hashlib.sha256(body).hexdigest())


def sign(secret: str, body: bytes, identifier: str) -> dict[str, str]:
    """Headers Jira attaches to a delivery (used by the fake, the demo and tests)."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "X-Hub-Signature": f"sha256={digest}",
        "X-Atlassian-Webhook-Identifier": identifier,
        "Content-Type": "application/json",
    }


def _names(values: list[object]) -> tuple[str, ...]:
    found: list[str] = []
    for value in values:
        raw = value.get("name") if isinstance(value, dict) else value
        name = clean(raw, _NAME_MAX) if isinstance(raw, str) else ""
        if name and name not in found:
            found.append(name)
    return tuple(found)


def _browse_url(self_url: str | None, key: str) -> str | None:
    if not self_url or not self_url.startswith(("https://", "http://")) or "/rest/" not in self_url:
        return None
    return f"{self_url.split('/rest/', 1)[0]}/browse/{key}"


def _team(labels: tuple[str, ...]) -> str | None:
    for label in labels:
        if label.lower().startswith(TEAM_PREFIX) and label[len(TEAM_PREFIX) :].strip():
            return label[len(TEAM_PREFIX) :].strip()
    return None


def _short(value: str | None) -> str | None:
    return (clean(value, _NAME_MAX) or None) if value else None


def work_item(key: str, fields: IssueFields, self_url: str | None) -> WorkItem:
    """The issue as a Cairn work item."""
    labels = _names(fields.labels)
    project = _short(fields.project.key if fields.project else None) or key.rsplit("-", 1)[0]
    try:
        return WorkItem.model_validate(
            {
                "system": System.JIRA,
                "ref": f"jira:{key}",
                "url": _browse_url(self_url, key),
                "project": project,
                "type": _short(fields.issuetype.name if fields.issuetype else None) or "Issue",
                "title": clean(fields.summary or "", 1_000),
                "labels": labels,
                "components": _names(fields.components),
                "team": _team(labels),
                "assignee": _short(fields.assignee.accountId if fields.assignee else None),
            },
            strict=False,
        )
    except ValidationError as exc:
        raise PayloadError(describe_validation_error(exc)) from exc


def _when(timestamp: int | None) -> datetime:
    if timestamp is None:
        return datetime.now(UTC)
    try:
        return datetime.fromtimestamp(timestamp / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        return datetime.now(UTC)


def _resolved(event: IssueEvent) -> bool:
    """True when this change resolved the issue (resolution set, or status now in Done)."""
    for item in event.changelog.items if event.changelog else []:
        if item.name == "resolution" and (item.to or item.toString):
            return True
        if item.name == "status":
            status = event.issue.fields.status
            if status and status.statusCategory and status.statusCategory.key == "done":
                return True
    return False


def parse(headers: Mapping[str, str], body: bytes) -> list[InboundEvent]:
    """A work item per issue event, plus feedback when the items may have changed."""
    data = load_json(body)
    if not isinstance(data, dict) or not isinstance(data.get("webhookEvent"), str):
        raise PayloadError("not a Jira webhook: no webhookEvent")
    if data["webhookEvent"] not in ISSUE_EVENTS:
        return []  # a known kind Cairn does not act on: 2xx so Jira does not retry
    try:
        event = IssueEvent.model_validate(data)
    except ValidationError as exc:
        raise PayloadError(describe_validation_error(exc)) from exc
    key, fields = event.issue.key, event.issue.fields
    if not _KEY.match(key):
        raise PayloadError("issue.key is not a Jira issue key")
    lowered = {k.lower(): v for k, v in headers.items()}
    delivery = _short(lowered.get(DELIVERY_HEADER))
    changed = {item.name for item in event.changelog.items} if event.changelog else set()
    updated = event.webhookEvent == "jira:issue_updated"

    def feedback(ref: str, closure: Closure | None, body_changed: bool) -> FeedbackEvent:
        observation = Observation(
            work_item_ref=ref,
            observed_at=_when(event.timestamp),
            actor=_short(event.user.accountId if event.user else None),
            delivery_id=delivery,
            items=None,
            closure=closure,
            body_changed=body_changed,
        )
        return FeedbackEvent(type="feedback", observation=observation)

    parent = fields.parent.key if fields.parent else None
    if LESSON_LABEL in _names(fields.labels) and parent and _KEY.match(parent):
        # One of Cairn's sub-tasks: its status is the lesson's mark on the parent issue.
        if updated and changed & {"status", "resolution"}:
            return [feedback(f"jira:{parent}", None, True)]
        return []
    events: list[InboundEvent] = [
        WorkItemEvent(
            type="work_item", work_item=work_item(key, fields, event.issue.self_url), complete=True
        )
    ]
    if updated:
        closure = Closure.RESOLVED if _resolved(event) else None
        body_changed = "description" in changed
        if body_changed or closure is not None:
            events.append(feedback(f"jira:{key}", closure, body_changed))
    return events

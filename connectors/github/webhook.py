"""Verify and parse `POST /hooks/github` deliveries (`X-Hub-Signature-256`, HMAC-SHA256).

Which deliveries do something is declared in `EVENTS`; every other event or action (and `ping`)
parses to no events, so ingress answers 2xx and GitHub, which never retries, is satisfied.
Draft pull requests are routed like any other: lessons are most useful while the work is young,
and `ready_for_review` only re-checks them (writing nothing when nothing changed).
"""

import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum

from pydantic import ValidationError

from connectors.base import InboundEvent, VerifiedDelivery, load_json
from connectors.github import section, template
from connectors.github.models import PullRequestEvent
from core.errors import (
    AuthenticationError,
    ConfigurationError,
    PayloadError,
    describe_validation_error,
)
from core.events import FeedbackEvent, WorkItemEvent
from core.feedback import Closure, ItemMark, ItemObservation, Observation
from core.work import System, WorkItem

SIGNATURE_HEADER = "X-Hub-Signature-256"
_PREFIX = "sha256="


class Reaction(StrEnum):
    """What Cairn does with a supported delivery."""

    WORK_ITEM = "work_item"
    """Route the pull request (after reading its changed files)."""
    MARKS = "marks"
    """Read the marks in the edited body's Cairn section."""
    CLOSURE = "closure"
    """Read the marks and record how the pull request ended."""


EVENTS: Mapping[tuple[str, str], Reaction] = {
    ("pull_request", "opened"): Reaction.WORK_ITEM,
    ("pull_request", "reopened"): Reaction.WORK_ITEM,
    ("pull_request", "ready_for_review"): Reaction.WORK_ITEM,
    ("pull_request", "synchronize"): Reaction.WORK_ITEM,
    ("pull_request", "edited"): Reaction.MARKS,
    ("pull_request", "closed"): Reaction.CLOSURE,
}
"""Every (X-GitHub-Event, action) pair Cairn acts on; `ping` and the rest are acknowledged."""


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header's value whatever the case of its name (stored deliveries keep lower case)."""
    value = headers.get(name)
    if value is None:
        value = headers.get(name.lower())
    if value is None:
        wanted = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == wanted), None)
    return value


def signature(secret: str, body: bytes) -> str:
    """The `X-Hub-Signature-256` value GitHub sends for `body`."""
    return _PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def sign(
    secret: str, body: bytes, *, event: str, delivery: str, hook_id: str = "1"
) -> dict[str, str]:
    """The headers GitHub attaches to a delivery (used by the fake, tests and the demo)."""
    return {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "X-GitHub-Hook-ID": hook_id,
        SIGNATURE_HEADER: signature(secret, body),
        "User-Agent": "GitHub-Hookshot/cairn-fake",
        "Content-Type": "application/json",
    }


class GitHubVerifier:
    """Checks `X-Hub-Signature-256`; the delivery key is `<X-GitHub-Hook-ID>:<X-GitHub-Delivery>`.

    GitHub shares `X-GitHub-Delivery` between redeliveries and between the hooks one event
    fires, so the hook id keeps two hooks' copies apart while a redelivery stays a duplicate.
    """

    def __init__(self, secret: str) -> None:
        if not secret:
            raise ConfigurationError("CAIRN_GITHUB_WEBHOOK_SECRET must not be empty")
        self._secret = secret

    def __repr__(self) -> str:
        return f"{type(self).__name__}(secret=***)"

    def verify(self, headers: Mapping[str, str], body: bytes) -> VerifiedDelivery:
        """Check the HMAC of the raw body; every failure is an AuthenticationError."""
        sent = header(headers, SIGNATURE_HEADER)
        if not sent or not sent.startswith(_PREFIX):
            raise AuthenticationError(f"missing or malformed {SIGNATURE_HEADER} header")
        expected = signature(self._secret, body)
        if not hmac.compare_digest(sent.encode(errors="replace"), expected.encode()):
            raise AuthenticationError("signature does not match the body")
        delivery = header(headers, "X-GitHub-Delivery")
        if not delivery:
            raise AuthenticationError("missing X-GitHub-Delivery header")
        hook = header(headers, "X-GitHub-Hook-ID") or "-"
        return VerifiedDelivery(delivery_key=f"{hook}:{delivery}")


def parse(headers: Mapping[str, str], body: bytes) -> list[InboundEvent]:
    """Zero or one core event per delivery (zero: an event Cairn acknowledges and ignores)."""
    event = header(headers, "X-GitHub-Event") or ""
    raw = load_json(body)
    if not isinstance(raw, dict):
        raise PayloadError("body is not a JSON object")
    action = raw.get("action")
    reaction = EVENTS.get((event, action if isinstance(action, str) else ""))
    if reaction is None:
        return []
    try:
        payload = PullRequestEvent.model_validate(raw)
    except ValidationError as exc:
        raise PayloadError(f"pull_request payload: {describe_validation_error(exc)}") from exc
    head = payload.pull_request.head
    # Only a branch in the repository itself is Cairn's: anyone can open a pull request from a
    # fork's `cairn/lessons` branch, and its body could copy the template PR's item markers.
    in_repository = head is not None and (
        head.repo is not None and head.repo.full_name == payload.repository.full_name
    )
    if in_repository and template.is_own_branch(None if head is None else head.ref):
        if reaction != Reaction.CLOSURE:
            return []  # Cairn's own template pull request: only how it ends matters
        delivery = header(headers, "X-GitHub-Delivery")
        hook = header(headers, "X-GitHub-Hook-ID") or "-"
        return _template_closure(payload, f"{hook}:{delivery}" if delivery else None)
    if reaction == Reaction.WORK_ITEM:
        return [WorkItemEvent(type="work_item", work_item=work_item(payload), complete=True)]
    delivery = header(headers, "X-GitHub-Delivery")
    hook = header(headers, "X-GitHub-Hook-ID") or "-"
    delivery_id = f"{hook}:{delivery}" if delivery else None
    return _feedback(payload, reaction, delivery_id)


def ref(full_name: str, number: int) -> str:
    """The work item ref of a pull request: `github:owner/repo#N`."""
    return f"github:{full_name}#{number}"


def _clean(value: str, limit: int = 200) -> str | None:
    cleaned = "".join(" " if ord(c) < 32 or ord(c) == 127 else c for c in value).strip()
    return cleaned[:limit].rstrip() or None


def work_item(event: PullRequestEvent) -> WorkItem:
    """The work item a pull request event describes (changed files and team come later)."""
    pr = event.pull_request
    labels = dict.fromkeys(n for n in (_clean(label.name) for label in pr.labels) if n)
    try:
        return WorkItem.model_validate(
            {
                "system": System.GITHUB,
                "ref": ref(event.repository.full_name, pr.number),
                "url": pr.html_url if (pr.html_url or "").startswith("http") else None,
                "project": event.repository.full_name,
                "type": "pull_request",
                "title": _clean(pr.title, 1000) or "",
                "labels": tuple(labels),
                "base_branch": None if pr.base is None else _clean(pr.base.ref),
                "assignee": None if pr.user is None else _clean(pr.user.login),
            },
            strict=False,  # the URL arrives as text
        )
    except ValidationError as exc:
        raise PayloadError(f"pull request: {exc.error_count()} unusable fields") from exc


def _observed_at(raw: str | None) -> datetime:
    if raw:
        try:
            parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed.astimezone(UTC)
    return datetime.now(UTC)


def _feedback(
    event: PullRequestEvent, reaction: Reaction, delivery_id: str | None
) -> list[InboundEvent]:
    pr = event.pull_request
    closure = None
    if reaction == Reaction.MARKS:
        change = None if event.changes is None else event.changes.body
        if change is None:
            return []  # a title or base-branch edit: the items did not move
        if section.extract(change.previous) == section.extract(pr.body):
            return []  # the engineer edited their own text, not the lessons
    else:
        closure = Closure.MERGED if pr.merged else Closure.CLOSED
    observation = Observation(
        work_item_ref=ref(event.repository.full_name, pr.number),
        observed_at=_observed_at(pr.updated_at),
        actor=None if event.sender is None else _clean(event.sender.login),
        delivery_id=delivery_id,
        items=section.observe(pr.body),
        closure=closure,
        body_changed=True,
    )
    return [FeedbackEvent(type="feedback", observation=observation)]


TEMPLATE_CLOSED = "the template pull request was closed without merging"


def _template_closure(event: PullRequestEvent, delivery_id: str | None) -> list[InboundEvent]:
    """How Cairn's template pull request ended, as marks on the lessons its body lists: merged
    → each item ticked (the lesson is in the repository's template: verified), closed unmerged
    → each item dismissed, with `TEMPLATE_CLOSED` as the reason until the observe stage finds
    the closing comment on the pull request (`via`)."""
    pr = event.pull_request
    merged = bool(pr.merged)
    mark = ItemMark.TICKED if merged else ItemMark.DISMISSED
    reason = None if merged else TEMPLATE_CLOSED
    items = tuple(
        ItemObservation(placement_id=found.placement_id, mark=mark, reason=reason)
        for found in section.observe(pr.body)
    )
    observation = Observation(
        work_item_ref=template.ref(event.repository.full_name),
        observed_at=_observed_at(pr.updated_at),
        actor=None if event.sender is None else _clean(event.sender.login),
        delivery_id=delivery_id,
        items=items,
        closure=Closure.MERGED if merged else Closure.CLOSED,
        body_changed=True,
        via=None if merged else ref(event.repository.full_name, pr.number),
    )
    return [FeedbackEvent(type="feedback", observation=observation)]

"""Lessons from Jira work: a finished issue (status category done) as a capture candidate, and
the reads and the optional comment capture makes.

`parse` offers every done issue of an issue event; which ones become drafts (issue types such as
`Postmortem`, labels such as `lesson-learned`) is the capture stage's setting, since a parser
needs no configuration. The webhook's description (REST v2 text) is the body; reporter, assignee,
creator and the event's user are the people it names; linked issues are evidence. The reader
adds remote links and commenters; the notifier posts one comment (ADF, with the `cairn.capture`
property, so a retry finds it instead of posting twice).
"""

import json
from collections.abc import Mapping
from typing import Any

from jira import JIRA
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from connectors import fields
from connectors.base import load_json
from connectors.jira.client import JiraCalls
from core.errors import PayloadError
from core.work_capture import CaptureEvent, Person, SourceDocument, SourceKind

ISSUE_EVENTS = frozenset({"jira:issue_created", "jira:issue_updated"})
PROPERTY = "cairn.capture"
TEAM_PREFIX = "team:"
MAX_COMMENTS = 100


class _Vendor(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _User(_Vendor):
    accountId: str | None = None
    displayName: str | None = None


class _Named(_Vendor):
    key: str | None = None
    name: str | None = None


class _Status(_Vendor):
    name: str | None = None
    statusCategory: _Named | None = None


class _LinkedIssue(_Vendor):
    key: str | None = None


class _IssueLink(_Vendor):
    outwardIssue: _LinkedIssue | None = None
    inwardIssue: _LinkedIssue | None = None


class _Fields(_Vendor):
    summary: str | None = None
    description: Any = None
    issuetype: _Named | None = None
    project: _Named | None = None
    status: _Status | None = None
    labels: list[Any] = Field(default_factory=list)
    assignee: _User | None = None
    reporter: _User | None = None
    creator: _User | None = None
    issuelinks: list[_IssueLink] = Field(default_factory=list)
    updated: str | None = None


class _Issue(_Vendor):
    key: str
    self_url: str | None = Field(default=None, alias="self")
    fields: _Fields = Field(default_factory=_Fields)


class _Event(_Vendor):
    webhookEvent: str
    timestamp: int | None = None
    user: _User | None = None
    issue: _Issue


def _site(self_url: str | None) -> str | None:
    if not self_url or not self_url.startswith(("https://", "http://")) or "/rest/" not in self_url:
        return None
    return self_url.split("/rest/", 1)[0]


def _person(user: _User | None, role: str) -> Person | None:
    login = fields.name(user.accountId if user else None)
    if user is None or login is None:
        return None
    return Person(login=login, name=fields.name(user.displayName) or "", role=role)


def _text(description: Any) -> str:
    """The description as text: REST v2 sends wiki text; an ADF document is flattened."""
    if isinstance(description, str):
        return fields.text(description)
    if isinstance(description, dict):
        lines: list[str] = []
        _flatten(description, lines)
        return fields.text("\n".join(lines))
    return ""


def _flatten(node: Any, lines: list[str]) -> None:
    if not isinstance(node, dict):
        return
    kind, content = node.get("type"), node.get("content") or []
    if kind == "text":
        lines[-1:] = [(lines[-1] if lines else "") + str(node.get("text") or "")]
        return
    if kind == "heading":
        level = (node.get("attrs") or {}).get("level", 2)
        lines.append(f"h{level if level in range(1, 7) else 2}. ")
    elif kind in ("paragraph", "listItem", "codeBlock"):
        lines.append("* " if kind == "listItem" else "")
    for child in content if isinstance(content, list) else []:
        _flatten(child, lines)


def parse(headers: Mapping[str, str], body: bytes) -> list[CaptureEvent]:
    """A capture candidate for an issue event whose issue is done; nothing otherwise."""
    data = load_json(body)
    if not isinstance(data, dict) or data.get("webhookEvent") not in ISSUE_EVENTS:
        return []
    try:
        event = _Event.model_validate(data)
    except ValidationError:
        return []  # the work-item parser reports what is wrong with the issue
    issue = event.issue
    status = issue.fields.status
    if status is None or status.statusCategory is None or status.statusCategory.key != "done":
        return []
    return [CaptureEvent(type="capture", document=document(issue, event.user))]


def document(issue: _Issue, user: _User | None = None) -> SourceDocument:
    """The issue as a capture source."""
    found = issue.fields
    labels = fields.names(
        label.get("name") if isinstance(label, dict) else label for label in found.labels
    )
    site = _site(issue.self_url)
    people = [
        p
        for p in (
            _person(found.reporter, "reporter"),
            _person(found.assignee, "assignee"),
            _person(found.creator, "creator"),
            _person(user, "editor"),
        )
        if p is not None
    ]
    linked = fields.names(
        link.key
        for entry in found.issuelinks
        for link in (entry.outwardIssue, entry.inwardIssue)
        if link is not None
    )
    team = next(
        (lb[len(TEAM_PREFIX) :].strip() for lb in labels if lb.lower().startswith(TEAM_PREFIX)),
        None,
    )
    try:
        return SourceDocument.model_validate(
            {
                "system": "jira",
                "kind": SourceKind.ISSUE,
                "ref": f"jira:{issue.key}",
                "version": fields.name(found.updated) or "unknown",
                "title": fields.name(found.summary) or issue.key,
                "url": f"{site}/browse/{issue.key}" if site else None,
                "project": fields.name(found.project.key if found.project else None)
                or issue.key.rsplit("-", 1)[0],
                "issue_type": fields.name(found.issuetype.name if found.issuetype else None),
                "labels": labels,
                "body": _text(found.description),
                "people": _unique(people),
                "evidence_links": [f"{site}/browse/{key}" for key in linked] if site else [],
                "linked": [f"jira:{key}" for key in linked],
                "team": team or None,
            },
            strict=False,
        )
    except ValidationError as exc:
        raise PayloadError(f"issue {issue.key}: {exc.error_count()} unusable fields") from exc


def _unique(people: list[Person]) -> list[Person]:
    seen: dict[str, Person] = {}
    for person in people:
        seen.setdefault(person.login, person)
    return list(seen.values())


class JiraSourceReader:
    """Reads what a webhook leaves out (remote links, commenters) and posts the author's note."""

    def __init__(self, calls: JiraCalls) -> None:
        self.calls = calls

    def __repr__(self) -> str:
        return f"JiraSourceReader({self.calls.credentials!r})"

    def _comments(self, key: str) -> list[dict[str, Any]]:
        def read(client: JIRA) -> list[dict[str, Any]]:
            listed = client.comments(key, expand="properties", max_results=MAX_COMMENTS)
            return [dict(comment.raw or {}) for comment in listed]

        return self.calls.run(f"read the comments of {key}", read)

    def read(self, source: SourceDocument) -> list[SourceDocument]:
        """The source with its remote links as evidence and its commenters as people."""
        key = source.ref.removeprefix("jira:")

        def remote(client: JIRA) -> list[dict[str, Any]]:
            return [dict(link.raw or {}) for link in client.remote_links(key)]

        links = self.calls.run(f"read the remote links of {key}", remote)
        evidence = [str(u) for u in source.evidence_links]
        for link in links:
            url = fields.url((link.get("object") or {}).get("url"))
            if url is not None:
                evidence.append(url)
        people = list(source.people)
        for comment in self._comments(key):
            person = _person(_User.model_validate(comment.get("author") or {}), "commenter")
            if person is not None:
                people.append(person)
        data = {
            **source.model_dump(mode="json"),
            "evidence_links": list(dict.fromkeys(evidence)),
            "people": [p.model_dump() for p in _unique(people)],
        }
        return [SourceDocument.model_validate(data, strict=False)]

    def notify(self, source: SourceDocument, lesson_id: str, url: str) -> bool:
        """Comment on the issue where its draft lesson is; False when it was already there."""
        key = source.ref.removeprefix("jira:")
        for comment in self._comments(key):
            for prop in comment.get("properties") or []:
                value = prop.get("value") if isinstance(prop, dict) else None
                if isinstance(value, dict) and (prop["key"], value.get("lesson")) == (
                    PROPERTY,
                    lesson_id,
                ):
                    return False
        text = f"Cairn captured this as a draft lesson for review: {url}"
        body = {
            "body": {
                "type": "doc",
                "version": 1,
                "content": [{"type": "paragraph", "content": [{"type": "text", "text": text}]}],
            },
            "properties": [{"key": PROPERTY, "value": {"lesson": lesson_id}}],
        }

        def post(client: JIRA) -> None:
            target = client._get_url(f"issue/{key}/comment")
            client._session.request("POST", target, data=json.dumps(body))

        # A create is not idempotent: the pipeline's retry reads the comments again first.
        self.calls.run(f"comment on {key}", post, idempotent=False)
        return True

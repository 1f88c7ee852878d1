"""A simulated engineer working in the Jira fake, and the signed webhooks Jira would send.

Each action changes the fake's state the way the Jira UI would and returns the webhook payload,
shaped like Atlassian's documented `jira:issue_*` payloads (REST v2 field shapes: the description
is plain text there, never ADF). `deliver` signs it (`X-Hub-Signature`) and POSTs it to Cairn.
"""

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from connectors.jira import adf
from connectors.jira.fake import JiraFake
from connectors.jira.webhook import sign

ENGINEER = {"accountId": "5b10ac8d82e05b22cc7d4ef5", "displayName": "Erin Engineer"}
Post = Callable[[str, bytes, dict[str, str]], int]
"""(url, body, headers) → HTTP status; tests pass their in-process client here."""


def _change(name: str, before: Any, after: Any) -> dict[str, Any]:
    def text(value: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, dict):
            return str(value.get("name") or adf.plain_text(value))
        return str(value)

    def ident(value: Any) -> str | None:
        return str(value.get("id")) if isinstance(value, dict) and value.get("id") else None

    return {
        "field": name,
        "fieldtype": "jira",
        "fieldId": name,
        "from": ident(before),
        "fromString": text(before),
        "to": ident(after),
        "toString": text(after),
    }


@dataclass
class Engineer:
    """Acts on `fake` as `user` and produces the matching webhook payloads."""

    fake: JiraFake
    user: dict[str, str] = field(default_factory=lambda: dict(ENGINEER))
    _ids: "itertools.count[int]" = field(default_factory=lambda: itertools.count(1))

    def payload(
        self,
        event: str,
        key: str,
        changes: list[dict[str, Any]],
        user: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """An Atlassian-shaped `jira:issue_*` payload for the issue as it is now."""
        issue = self.fake.issues[key]
        base = self.fake.url
        fields = json.loads(json.dumps(issue["fields"]))
        fields["description"] = adf.plain_text(fields.get("description")) or None
        account = user or self.user
        fields["labels"] = fields.get("labels") or []
        body: dict[str, Any] = {
            "timestamp": int(self.fake._clock.timestamp() * 1000),
            "webhookEvent": event,
            "issue_event_type_name": "issue_created"
            if event.endswith("created")
            else "issue_generic",
            "user": {
                "self": f"{base}/rest/api/2/user?accountId={account['accountId']}",
                "accountId": account["accountId"],
                "displayName": account.get("displayName", ""),
                "active": True,
                "timeZone": "UTC",
                "accountType": "atlassian",
            },
            "issue": {
                "id": issue["id"],
                "self": f"{base}/rest/api/2/issue/{issue['id']}",
                "key": key,
                "fields": fields,
            },
        }
        if changes:
            body["changelog"] = {"id": str(10400 + next(self._ids)), "items": changes}
        return body

    def create_issue(
        self,
        project: str,
        summary: str,
        description: str = "",
        *,
        issue_type: str = "Story",
        labels: tuple[str, ...] = (),
        components: tuple[str, ...] = (),
    ) -> tuple[str, dict[str, Any]]:
        """A person files an issue; its key and the `jira:issue_created` payload."""
        doc = adf.empty_doc()
        if description:
            doc["content"] = [
                {"type": "paragraph", "content": [{"type": "text", "text": description}]}
            ]
        issue = self.fake.create(
            {
                "project": {"key": project},
                "issuetype": {"name": issue_type},
                "summary": summary,
                "description": doc,
                "labels": list(labels),
                "components": [{"name": c} for c in components],
                "assignee": dict(self.user),
            }
        )
        return issue["key"], self.payload("jira:issue_created", issue["key"], [])

    def _edit_item(
        self, key: str, placement_id: str, change: Callable[[dict[str, Any]], None]
    ) -> dict[str, Any]:
        before = self.fake.description(key)
        after = json.loads(json.dumps(before))
        wanted = adf.local_id(placement_id)
        found = False
        for node in after.get("content") or []:
            for item in node.get("content") or [] if node.get("type") == "taskList" else []:
                if (item.get("attrs") or {}).get("localId") == wanted:
                    change(item)
                    found = True
        if not found:
            raise KeyError(f"{key} shows no item for {placement_id}")
        self.fake.edit(key, {"description": after})
        return self.payload("jira:issue_updated", key, [_change("description", before, after)])

    def tick(self, key: str, placement_id: str) -> dict[str, Any]:
        """Tick the task item of a placement."""
        return self._edit_item(key, placement_id, lambda item: item["attrs"].update(state="DONE"))

    def dismiss(self, key: str, placement_id: str, reason: str) -> dict[str, Any]:
        """Write "N/A: reason" at the end of the placement's task item."""

        def write(item: dict[str, Any]) -> None:
            item.setdefault("content", []).append({"type": "text", "text": f" N/A: {reason}"})

        return self._edit_item(key, placement_id, write)

    def add_paragraph(self, key: str, text: str) -> dict[str, Any]:
        """Append a paragraph of the engineer's own to the description."""
        before = self.fake.description(key)
        after = json.loads(json.dumps(before or adf.empty_doc()))
        after["content"].append({"type": "paragraph", "content": [{"type": "text", "text": text}]})
        self.fake.edit(key, {"description": after})
        return self.payload("jira:issue_updated", key, [_change("description", before, after)])

    def move(self, key: str, status: str) -> dict[str, Any]:
        """Move an issue or sub-task to `status` (Done resolves it)."""
        before = self.fake.issues[key]["fields"]
        old_status, old_resolution = before["status"], before["resolution"]
        self.fake.transition(key, status)
        now = self.fake.issues[key]["fields"]
        changes = [_change("status", old_status, now["status"])]
        if now["resolution"] != old_resolution:
            changes.append(_change("resolution", old_resolution, now["resolution"]))
        return self.payload("jira:issue_updated", key, changes)


def deliver(
    payload: dict[str, Any], url: str, secret: str, identifier: str, post: Post | None = None
) -> int:
    """Sign `payload` like Jira and POST it to `url`; the HTTP status Cairn answered."""
    body = json.dumps(payload).encode()
    headers = sign(secret, body, identifier)
    if post is not None:
        return post(url, body, headers)
    response = httpx.post(url, content=body, headers=headers, timeout=10.0)
    return response.status_code

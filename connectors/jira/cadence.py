"""Review-cadence issues in Jira: one issue per owner team, found again by its property.

The issue carries the `cairn-cadence` label and the `cairn.cadence` issue property
(`{"team", "digest"}`), written in the same request as its fields, so a later run finds it by a
JQL search and knows what it lists without parsing the description. A create is never retried
blindly: the caller looks for the team's open issue first (`find`).
"""

import json
from typing import Any

from jira import JIRA

from connectors.jira import adf
from connectors.jira.client import JiraCalls
from core.cadence import EMPTY, INTRO, LABEL, Issue, Report, line
from core.errors import PayloadError

PROPERTY = "cairn.cadence"
DEFAULT_ISSUE_TYPE = "Task"


def document(report: Report) -> dict[str, Any]:
    """The description (ADF): the intro, then one bullet per item linking to its page."""
    items = [
        {
            "type": "listItem",
            "content": [
                {
                    "type": "paragraph",
                    "content": [
                        {
                            "type": "text",
                            "text": adf.clean(item.title, 300) or item.subject,
                            "marks": [{"type": "link", "attrs": {"href": adf.clean(item.link)}}],
                        },
                        {"type": "text", "text": f" — {adf.clean(line(item), 1_000)}"},
                    ],
                }
            ],
        }
        for item in report.items
    ]
    content: list[dict[str, Any]] = [
        {"type": "paragraph", "content": [{"type": "text", "text": INTRO}]}
    ]
    if items:
        content.append({"type": "bulletList", "content": items})
    else:
        content.append({"type": "paragraph", "content": [{"type": "text", "text": EMPTY}]})
    return {"type": "doc", "version": 1, "content": content}


def _value(report: Report) -> dict[str, str]:
    return {"team": report.team, "digest": report.digest}


class JiraIssues:
    """Cadence issues in Jira projects, through the `jira` client (REST v3)."""

    def __init__(self, calls: JiraCalls, *, issue_type: str = DEFAULT_ISSUE_TYPE) -> None:
        self.calls = calls
        self.issue_type = issue_type

    def __repr__(self) -> str:
        return f"JiraIssues({self.calls.credentials!r})"

    def _issue(self, raw: dict[str, Any]) -> Issue:
        key = str(raw.get("key"))
        fields = raw.get("fields") or {}
        category = ((fields.get("status") or {}).get("statusCategory") or {}).get("key")
        value = (raw.get("properties") or {}).get(PROPERTY)
        digest = value.get("digest") if isinstance(value, dict) else None
        url = f"{self.calls.credentials.url.rstrip('/')}/browse/{key}"
        return Issue(key, url, category != "done", digest if isinstance(digest, str) else None)

    def _send(self, what: str, method: str, path: str, body: dict[str, Any]) -> Any:
        def call(client: JIRA) -> Any:
            url = client._get_url(path)
            response = client._session.request(method, url, data=json.dumps(body))
            return response.json() if response.content else None

        # A POST creates: not retried blindly (the caller finds the open issue first).
        return self.calls.run(what, call, idempotent=method != "POST")

    def find(self, where: str, report: Report) -> Issue | None:
        """The team's open cadence issue in project `where` (newest first), or None."""
        jql = (
            f'project = "{where}" AND labels = "{LABEL}" AND statusCategory != Done '
            "ORDER BY created DESC"
        )

        def call(client: JIRA) -> dict[str, Any]:
            page = client.enhanced_search_issues(
                jql, maxResults=50, fields="status", properties=PROPERTY, json_result=True
            )
            return dict(page) if isinstance(page, dict) else {}

        page = self.calls.run(f"search cadence issues in {where}", call)
        for raw in page.get("issues") or []:
            value = (raw.get("properties") or {}).get(PROPERTY)
            if isinstance(value, dict) and value.get("team") == report.team:
                return self._issue(raw)
        return None

    def read(self, ref: str) -> Issue | None:
        """The issue now, or None when it was deleted (or is no longer visible)."""

        def call(client: JIRA) -> dict[str, Any]:
            return dict(client.issue(ref, fields="status", properties=PROPERTY).raw or {})

        try:
            return self._issue(self.calls.run(f"read {ref}", call))
        except PayloadError as exc:
            if "not found" in str(exc):
                return None
            raise

    def create(self, where: str, report: Report) -> Issue:
        """Open the team's issue in project `where`: fields and property in one request."""
        fields = {
            "project": {"key": where},
            "issuetype": {"name": self.issue_type},
            "summary": adf.clean(report.title, 250),
            "description": document(report),
            "labels": [LABEL],
        }
        body = {"fields": fields, "properties": [{"key": PROPERTY, "value": _value(report)}]}
        created = self._send(f"create the cadence issue of {report.team}", "POST", "issue", body)
        key = created.get("key") if isinstance(created, dict) else None
        if not isinstance(key, str):
            raise PayloadError(f"Jira created the cadence issue of {report.team} without a key")
        url = f"{self.calls.credentials.url.rstrip('/')}/browse/{key}"
        return Issue(key, url, True, report.digest)

    def update(self, ref: str, report: Report) -> Issue:
        """Make the issue list the report: summary, description and property in one `PUT`."""
        fields = {"summary": adf.clean(report.title, 250), "description": document(report)}
        body = {"fields": fields, "properties": [{"key": PROPERTY, "value": _value(report)}]}
        self._send(f"update {ref}", "PUT", f"issue/{ref}", body)
        url = f"{self.calls.credentials.url.rstrip('/')}/browse/{ref}"
        return Issue(ref, url, True, report.digest)

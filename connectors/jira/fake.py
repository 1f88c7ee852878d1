"""A contract fake of the Jira Cloud REST v3 subset Cairn's target uses, on 127.0.0.1.

Endpoints (under `/rest/api/3`): `GET serverInfo` (deploymentType Cloud, which the `jira`
constructor reads), `GET field` (fetched before searches), `GET/POST/PUT issue[/KEY]` with ADF
descriptions and `properties` on create and edit, `GET/PUT/DELETE issue/KEY/properties/NAME`,
`GET/POST issue/KEY/transitions`, `GET issue/KEY/remotelink`, `GET/POST issue/KEY/comment`
(ADF bodies, `properties` on create, `expand=properties` and `startAt` paging on read),
`GET/POST search/jql` (token pagination) and `POST search/approximate-count` over the JQL
subset in `fake_jql`. createmeta is not served: Cairn names the sub-task type directly.

It keeps state, counts requests and writes per issue, answers scripted failures (429 with
Retry-After on demand), and can run a callback after a given request (a human edit racing
Cairn's). `connectors.jira.engineer` acts on it as a person would and sends the webhooks.
"""

import base64
import json
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from connectors.fake_http import serve
from connectors.jira.client import Credentials
from connectors.jira.fake_jql import JqlError, compile_jql
from connectors.jira.target import JiraTarget
from connectors.retrying import RetryPolicy

API = "/rest/api/3"
Reply = tuple[int, Any, dict[str, str]]


def _category(key: str, name: str, number: int) -> dict[str, Any]:
    return {"id": number, "key": key, "name": name}


STATUSES: dict[str, dict[str, Any]] = {
    "To Do": {"id": "10000", "name": "To Do", "statusCategory": _category("new", "To Do", 2)},
    "In Progress": {
        "id": "3",
        "name": "In Progress",
        "statusCategory": _category("indeterminate", "In Progress", 4),
    },
    "Done": {"id": "10001", "name": "Done", "statusCategory": _category("done", "Done", 3)},
}
TRANSITIONS = {"11": "To Do", "21": "In Progress", "31": "Done"}
ISSUE_TYPES = {
    "Story": {"id": "10001", "name": "Story", "subtask": False},
    "Bug": {"id": "10002", "name": "Bug", "subtask": False},
    "Task": {"id": "10003", "name": "Task", "subtask": False},
    "Subtask": {"id": "10004", "name": "Subtask", "subtask": True},
}
FIELDS = [
    {"id": f, "key": f, "name": f.title(), "custom": False, "clauseNames": [f]}
    for f in ("summary", "description", "status", "labels", "resolution", "parent", "project")
]


@dataclass
class _Scripted:
    status: int
    times: int
    retry_after: str | None
    match: re.Pattern[str] | None


@dataclass
class JiraFake:
    """Jira Cloud in miniature; `url` is set while `running()`."""

    email: str = "cairn@example.com"
    token: str = "fake-api-token"  # noqa: S105 (a test credential)
    account_id: str = "557058:cairn-bot"
    projects: set[str] = field(default_factory=lambda: {"PAY", "OPS", "WEB"})
    issues: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    writes: Counter[str] = field(default_factory=Counter)
    url: str = ""
    lock: threading.RLock = field(default_factory=threading.RLock)
    _scripted: list[_Scripted] = field(default_factory=list)
    _after: list[tuple[re.Pattern[str], Callable[[], None]]] = field(default_factory=list)
    _clock: datetime = field(default_factory=lambda: datetime.now(UTC))

    # --- set-up and observation --------------------------------------------------------------

    def credentials(self) -> Credentials:
        """What Cairn needs to reach this fake."""
        return Credentials(url=self.url, email=self.email, token=self.token, timeout=10.0)

    def target(self, **options: Any) -> JiraTarget:
        """A JiraTarget pointed at this fake (fast retries unless `policy` is given)."""
        options.setdefault("account_id", self.account_id)
        options.setdefault("policy", RetryPolicy(attempts=3, base_wait=0.01, max_wait=2.0))
        return JiraTarget(self.credentials(), **options)

    def fail(
        self, status: int, times: int = 1, retry_after: str | None = None, match: str | None = None
    ) -> None:
        """Answer the next `times` requests matching `match` ("METHOD /path" regex) so."""
        pattern = re.compile(match) if match else None
        with self.lock:
            self._scripted.append(_Scripted(status, times, retry_after, pattern))

    def after(self, match: str, action: Callable[[], None]) -> None:
        """Run `action` once, right after serving the next request matching `match`."""
        with self.lock:
            self._after.append((re.compile(match), action))

    def count(self, prefix: str) -> int:
        """Requests served whose "METHOD /path" starts with `prefix` (paths under the API)."""
        with self.lock:
            return sum(1 for r in self.requests if r.startswith(prefix))

    def description(self, key: str) -> Any:
        """The stored ADF description of `key`."""
        with self.lock:
            return json.loads(json.dumps(self.issues[key]["fields"].get("description")))

    def property(self, key: str, name: str) -> Any:
        """An issue property's value, or None."""
        with self.lock:
            return self.issues[key]["properties"].get(name)

    def children(self, key: str) -> list[dict[str, Any]]:
        """The sub-tasks of `key`."""
        with self.lock:
            return [
                i
                for i in self.issues.values()
                if (i["fields"].get("parent") or {}).get("key") == key
            ]

    # --- state changes (the REST handlers and the simulated engineer share them) -------------

    def _now(self) -> str:
        # Strictly increasing, so every change moves `updated` even within one millisecond.
        self._clock = max(self._clock + timedelta(milliseconds=1), datetime.now(UTC))
        return self._clock.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"

    def create(self, fields: dict[str, Any], properties: list[Any] | None = None) -> dict[str, Any]:
        """Store a new issue from REST-shaped fields; raises ValueError like Jira's 400."""
        with self.lock:
            project = (fields.get("project") or {}).get("key")
            if project not in self.projects:
                raise ValueError("project: valid project is required")
            type_name = (fields.get("issuetype") or {}).get("name")
            issue_type = ISSUE_TYPES.get("Subtask" if type_name == "Sub-task" else str(type_name))
            if issue_type is None:
                raise ValueError("issuetype: valid issue type is required")
            if not isinstance(fields.get("summary"), str) or not fields["summary"].strip():
                raise ValueError("summary: You must specify a summary of the issue.")
            parent_key = (fields.get("parent") or {}).get("key")
            if issue_type["subtask"] and parent_key not in self.issues:
                raise ValueError(
                    "parent: Given parent issue does not belong to appropriate hierarchy."
                )
            number = 1 + sum(1 for k in self.issues if k.startswith(f"{project}-"))
            key, issue_id = f"{project}-{number}", str(10000 + len(self.issues) + 1)
            now = self._now()
            stored: dict[str, Any] = {
                "id": issue_id,
                "key": key,
                "fields": {
                    "summary": fields["summary"],
                    "description": fields.get("description"),
                    "issuetype": dict(issue_type),
                    "project": {
                        "id": str(10000 + sorted(self.projects).index(project)),
                        "key": project,
                    },
                    "status": STATUSES["To Do"],
                    "resolution": None,
                    "labels": list(fields.get("labels") or []),
                    "components": list(fields.get("components") or []),
                    "assignee": fields.get("assignee"),
                    "duedate": fields.get("duedate"),
                    "created": now,
                    "updated": now,
                },
                "properties": {p["key"]: p["value"] for p in properties or []},
            }
            if parent_key:
                parent = self.issues[parent_key]
                stored["fields"]["parent"] = {"id": parent["id"], "key": parent_key}
            self.issues[key] = stored
            return stored

    def edit(self, key: str, fields: dict[str, Any], properties: list[Any] | None = None) -> None:
        """Change fields and properties of `key`, moving `updated`."""
        with self.lock:
            issue = self.issues[key]
            for name, value in fields.items():
                issue["fields"][name] = value
            for prop in properties or []:
                issue["properties"][prop["key"]] = prop["value"]
            issue["fields"]["updated"] = self._now()

    def transition(self, key: str, status: str, resolution: str | None = None) -> None:
        """Move `key` to `status`; Done sets a resolution, other statuses clear it."""
        done = STATUSES[status]["statusCategory"]["key"] == "done"
        value = {"name": resolution or "Done"} if done else None
        self.edit(key, {"status": STATUSES[status], "resolution": value})

    def seed(self, issue: dict[str, Any]) -> None:
        """Hold an issue exactly as a recorded webhook shows it (its key, id and fields)."""
        with self.lock:
            self.issues[issue["key"]] = {
                "id": issue["id"],
                "key": issue["key"],
                "fields": json.loads(json.dumps(issue["fields"])),
                "properties": {},
            }

    def add_remote_link(self, key: str, url: str, title: str) -> None:
        """Link a web page to `key` (a dashboard, a document), as Jira's remote links do."""
        with self.lock:
            links = self.issues[key].setdefault("remotelinks", [])
            ident = 10000 + len(links)
            links.append(
                {
                    "id": ident,
                    "self": f"{self.url}{API}/issue/{key}/remotelink/{ident}",
                    "object": {"url": url, "title": title},
                }
            )

    def comment_as(self, key: str, text: str, account_id: str, display_name: str) -> None:
        """A person's comment on `key` (plain ADF paragraph)."""
        with self.lock:
            stored = self.issues[key].setdefault("comments", [])
            ident = str(20000 + len(stored))
            now = self._now()
            paragraph = {"type": "paragraph", "content": [{"type": "text", "text": text}]}
            stored.append(
                {
                    "id": ident,
                    "self": f"{self.url}{API}/issue/{key}/comment/{ident}",
                    "author": {"accountId": account_id, "displayName": display_name},
                    "body": {"type": "doc", "version": 1, "content": [paragraph]},
                    "created": now,
                    "updated": now,
                    "properties": {},
                }
            )

    # --- REST --------------------------------------------------------------------------------

    def _self(self, issue: dict[str, Any]) -> str:
        return f"{self.url}{API}/issue/{issue['id']}"

    def _view(
        self, issue: dict[str, Any], fields: list[str], properties: list[str]
    ) -> dict[str, Any]:
        everything = not fields or "*all" in fields or "*navigable" in fields
        shown = {k: v for k, v in issue["fields"].items() if everything or k in fields}
        if everything or "subtasks" in fields:
            shown["subtasks"] = [
                {
                    "id": c["id"],
                    "key": c["key"],
                    "self": self._self(c),
                    "fields": {"summary": c["fields"]["summary"], "status": c["fields"]["status"]},
                }
                for c in self.children(issue["key"])
            ]
        view: dict[str, Any] = {
            "id": issue["id"],
            "key": issue["key"],
            "self": self._self(issue),
            "fields": shown,
        }
        if properties:
            view["properties"] = {
                p: issue["properties"][p] for p in properties if p in issue["properties"]
            }
        copied: dict[str, Any] = json.loads(json.dumps(view))
        return copied

    def _lookup(self, key: str) -> dict[str, Any] | None:
        found = self.issues.get(key)
        if found is None:
            found = next((i for i in self.issues.values() if i["id"] == key), None)
        return found

    def _search(self, query: dict[str, Any]) -> Reply:
        try:
            predicate, (order, descending) = compile_jql(str(query.get("jql") or ""))
        except JqlError as exc:
            return 400, {"errorMessages": [str(exc)]}, {}
        hits = [i for i in self.issues.values() if predicate(i)]
        number = (lambda i: int(i["key"].rsplit("-", 1)[1])) if order == "key" else None
        hits.sort(key=number or (lambda i: i["fields"]["created"]), reverse=descending)
        start = int(query.get("nextPageToken") or 0)
        size = max(1, min(int(query.get("maxResults") or 50), 100))
        page = hits[start : start + size]
        fields, props = _list(query.get("fields")), _list(query.get("properties"))
        body: dict[str, Any] = {
            "issues": [self._view(i, fields, props) for i in page],
            "isLast": start + size >= len(hits),
        }
        if start + size < len(hits):
            body["nextPageToken"] = str(start + size)
        return 200, body, {}

    def _issue(self, method: str, key: str, rest: str, query: dict[str, Any], data: Any) -> Reply:
        issue = self._lookup(key)
        if issue is None:
            return (
                404,
                {
                    "errorMessages": [
                        "Issue does not exist or you do not have permission to see it."
                    ]
                },
                {},
            )
        key = issue["key"]
        if rest == "" and method == "GET":
            return (
                200,
                self._view(issue, _list(query.get("fields")), _list(query.get("properties"))),
                {},
            )
        if rest == "" and method == "PUT":
            self.writes[key] += 1
            self.edit(key, (data or {}).get("fields") or {}, (data or {}).get("properties"))
            return 204, None, {}
        if rest.startswith("/properties/"):
            name = rest.removeprefix("/properties/")
            if method == "GET":
                if name not in issue["properties"]:
                    return 404, {"errorMessages": ["The property was not found."]}, {}
                return 200, {"key": name, "value": issue["properties"][name]}, {}
            self.writes[key] += 1
            if method == "DELETE":
                issue["properties"].pop(name, None)
                return 204, None, {}
            created = name not in issue["properties"]
            issue["properties"][name] = data
            return (201 if created else 200), None, {}
        if rest == "/comment":
            return self._comment(method, issue, query, data)
        if rest == "/remotelink" and method == "GET":
            return 200, json.loads(json.dumps(issue.get("remotelinks", []))), {}
        if rest == "/transitions" and method == "GET":
            return (
                200,
                {
                    "transitions": [
                        {"id": i, "name": s, "to": STATUSES[s]} for i, s in TRANSITIONS.items()
                    ]
                },
                {},
            )
        if rest == "/transitions" and method == "POST":
            target = TRANSITIONS.get(str(((data or {}).get("transition") or {}).get("id")))
            if target is None:
                return 400, {"errorMessages": ["Transition id is not valid."]}, {}
            self.writes[key] += 1
            self.transition(key, target)
            return 204, None, {}
        return 405, {"errorMessages": ["not supported by the fake"]}, {}

    def comments(self, key: str) -> list[dict[str, Any]]:
        """The comments on `key` as stored: ADF `body`, `properties` as a key → value dict."""
        with self.lock:
            copied: list[dict[str, Any]] = json.loads(
                json.dumps(self.issues[key].get("comments", []))
            )
            return copied

    def _comment(
        self, method: str, issue: dict[str, Any], query: dict[str, Any], data: Any
    ) -> Reply:
        stored: list[dict[str, Any]] = issue.setdefault("comments", [])
        if method == "GET":
            start = int(query.get("startAt") or 0)
            size = max(1, min(int(query.get("maxResults") or 5000), 5000))
            expand = _list(query.get("expand"))
            page = []
            for comment in stored[start : start + size]:
                view = {k: v for k, v in comment.items() if k != "properties"}
                if "properties" in expand:
                    view["properties"] = [
                        {"key": k, "value": v} for k, v in comment["properties"].items()
                    ]
                page.append(view)
            body = {"startAt": start, "maxResults": size, "total": len(stored), "comments": page}
            return 200, json.loads(json.dumps(body)), {}
        if method != "POST":
            return 405, {"errorMessages": ["not supported by the fake"]}, {}
        document = (data or {}).get("body")
        if not isinstance(document, dict) or document.get("type") != "doc":
            return (
                400,
                {"errorMessages": [], "errors": {"comment": "Comment body is not valid!"}},
                {},
            )
        self.writes[issue["key"]] += 1
        ident = str(10000 + sum(len(i.get("comments", [])) for i in self.issues.values()))
        now = self._now()
        comment = {
            "id": ident,
            "self": f"{self._self(issue)}/comment/{ident}",
            "author": {"accountId": self.account_id, "displayName": "Cairn"},
            "body": document,
            "created": now,
            "updated": now,
            "properties": {p["key"]: p["value"] for p in (data or {}).get("properties") or []},
        }
        stored.append(comment)
        view = {k: v for k, v in comment.items() if k != "properties"}
        return 201, json.loads(json.dumps(view)), {}

    def dispatch(self, method: str, target: str, auth: str | None, body: bytes) -> Reply:
        """The reply to one request (scripted failures first)."""
        parts = urlsplit(target)
        line = f"{method} {parts.path.removeprefix(API)}"
        with self.lock:
            self.requests.append(line)
            for scripted in self._scripted:
                if scripted.times > 0 and (scripted.match is None or scripted.match.search(line)):
                    scripted.times -= 1
                    extra = {"Retry-After": scripted.retry_after} if scripted.retry_after else {}
                    return scripted.status, {"errorMessages": ["scripted failure"]}, extra
            expected = base64.b64encode(f"{self.email}:{self.token}".encode()).decode()
            if auth != f"Basic {expected}":
                return 401, {"errorMessages": ["You are not authenticated."]}, {}
            try:
                data = json.loads(body) if body else None
            except ValueError:
                return 400, {"errorMessages": ["body is not JSON"]}, {}
            query = {k: v if len(v) > 1 else v[0] for k, v in parse_qs(parts.query).items()}
            reply = self._route(method, parts.path.removeprefix(API), query, data)
            for index, (pattern, action) in enumerate(self._after):
                if pattern.search(line):
                    del self._after[index]
                    action()
                    break
            return reply

    def _route(self, method: str, path: str, query: dict[str, Any], data: Any) -> Reply:
        if path == "/serverInfo":
            return (
                200,
                {
                    "baseUrl": self.url,
                    "version": "1001.0.0-SNAPSHOT",
                    "versionNumbers": [1001, 0, 0],
                    "deploymentType": "Cloud",
                    "buildNumber": 100000,
                    "serverTitle": "Jira (fake)",
                },
                {},
            )
        if path == "/field" and method == "GET":
            return 200, FIELDS, {}
        if path == "/search/approximate-count" and method == "POST":
            try:
                predicate, _order = compile_jql(str((data or {}).get("jql") or ""))
            except JqlError as exc:
                return 400, {"errorMessages": [str(exc)]}, {}
            return 200, {"count": sum(1 for i in self.issues.values() if predicate(i))}, {}
        if path == "/search/jql":
            return self._search(query if method == "GET" else dict(data or {}))
        if path == "/issue" and method == "POST":
            try:
                issue = self.create(
                    (data or {}).get("fields") or {}, (data or {}).get("properties")
                )
            except ValueError as exc:
                name, _, message = str(exc).partition(": ")
                return 400, {"errorMessages": [], "errors": {name: message}}, {}
            parent = (issue["fields"].get("parent") or {}).get("key")
            self.writes[parent or issue["key"]] += 1
            return 201, {"id": issue["id"], "key": issue["key"], "self": self._self(issue)}, {}
        match = re.fullmatch(r"/issue/([^/]+)(/.*)?", path)
        if match is not None:
            return self._issue(method, match.group(1), match.group(2) or "", query, data)
        return 404, {"errorMessages": ["no such resource in the fake"]}, {}

    @contextmanager
    def running(self) -> Iterator["JiraFake"]:
        """Serve on an ephemeral loopback port until the block ends."""

        def answer(method: str, target: str, headers: dict[str, str], body: bytes) -> Reply:
            return self.dispatch(method, target, headers.get("authorization"), body)

        with serve(answer) as url:
            self.url = url
            yield self


def _list(value: Any) -> list[str]:
    """A query parameter given as a comma list, repeated, or absent."""
    values = value if isinstance(value, list) else [value] if value else []
    return [part.strip() for v in values for part in str(v).split(",") if part.strip()]

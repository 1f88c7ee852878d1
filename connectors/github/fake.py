"""A contract fake of the GitHub REST subset Cairn uses, and a simulated engineer.

Serves on 127.0.0.1 (an ephemeral port) for tests and the demo, never in production:
`GET`/`PATCH /repos/{o}/{r}/pulls/{n}`, `GET …/pulls/{n}/files` (Link-header pagination),
`GET`/`POST /repos/{o}/{r}/issues/{n}/comments` (a pull request's conversation, paginated),
`GET /repos/{o}/{r}/contents/{path}` (base64), an issue's comments the same way,
`POST /repos/{o}/{r}/check-runs`, `PATCH …/check-runs/{id}`, `GET …/commits/{sha}/check-runs`,
`GET`/`POST /repos/{o}/{r}/issues` and `GET`/`PATCH …/issues/{n}` (issues Cairn opens),
`POST /app/installations/{id}/access_tokens`, branches, file writes and opening pull requests
(`connectors.github.fake_repo`), and scripted
rate-limit or outage answers. It counts reads and writes per pull request, and each change it
makes (an API edit, an engineer's tick, a merge) is queued as the `pull_request` webhook GitHub
would send, ready to be signed and delivered to Cairn.
"""

import itertools
import json
import re
import secrets
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import jwt

from connectors.fake_http import Failure, Failures, serve
from connectors.github.fake_repo import FakeRepositories
from connectors.github.section import marker_id
from connectors.github.target import GitHubTarget
from connectors.github.webhook import sign
from connectors.retrying import RetryPolicy

Key = tuple[str, int]
"""(owner/repo, pull request number)."""
Reply = tuple[int, Any, dict[str, str]]

_PULL = re.compile(r"^/repos/(?P<repo>[^/]+/[^/]+)/pulls/(?P<n>\d+)(?P<files>/files)?$")
_CHECKS = re.compile(r"^/repos/(?P<repo>[^/]+/[^/]+)/check-runs$")
_CHECK = re.compile(r"^/repos/(?P<repo>[^/]+/[^/]+)/check-runs/(?P<id>\d+)$")
_REF_CHECKS = re.compile(r"^/repos/(?P<repo>[^/]+/[^/]+)/commits/(?P<ref>[^/]+)/check-runs$")
_COMMENTS = re.compile(r"^/repos/(?P<repo>[^/]+/[^/]+)/issues/(?P<n>\d+)/comments$")
_ISSUES = re.compile(r"^/repos/(?P<repo>[^/]+/[^/]+)/issues$")
_ISSUE = re.compile(r"^/repos/(?P<repo>[^/]+/[^/]+)/issues/(?P<n>\d+)$")
_TOKENS = re.compile(r"^/app/installations/(?P<id>\d+)/access_tokens$")
_CONTENTS = re.compile(r"^/repos/(?P<repo>[^/]+/[^/]+)/contents/(?P<path>.+)$")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class FakePull:
    """One pull request's state."""

    repo: str
    number: int
    title: str
    body: str | None
    author: str
    files: list[str]
    labels: list[str] = field(default_factory=list)
    base: str = "main"
    head_sha: str = field(default_factory=lambda: secrets.token_hex(20))
    draft: bool = False
    state: str = "open"
    merged: bool = False
    added: list[str] = field(default_factory=list)
    created_at: str = field(default_factory=_now)
    updated_at: str = field(default_factory=_now)
    head_ref: str = "topic"


@dataclass
class Delivery:
    """A webhook as GitHub would send it: event name and JSON payload."""

    event: str
    payload: dict[str, Any]

    @property
    def body(self) -> bytes:
        """The raw body, as signed."""
        return json.dumps(self.payload).encode()


class FakeGitHub(FakeRepositories):
    """The fake API server and its state; `url` is set while `running()`.

    `token` is the personal token it accepts; with `app_id` and `app_public_key` it also
    issues installation tokens to a correctly signed App JWT. `actor` is the login API writes
    are attributed to (what Cairn must recognise as its own edits).
    """

    def __init__(
        self,
        *,
        token: str = "ghp_fake",  # noqa: S107 (the fake's own test token)
        actor: str = "cairn-bot",
        app_id: str | None = None,
        app_public_key: str | None = None,
    ) -> None:
        self.actor = actor
        self.app_id = app_id
        self.app_public_key = app_public_key
        self.tokens = {token}
        self.url = ""
        self.pulls: dict[Key, FakePull] = {}
        self.reads: Counter[Key] = Counter()
        self.writes: Counter[Key] = Counter()
        self.check_runs: list[dict[str, Any]] = []
        self.comments: dict[Key, list[dict[str, Any]]] = {}
        self.issues: dict[Key, dict[str, Any]] = {}
        self.contents: dict[tuple[str, str], str] = {}
        self.requests: list[str] = []
        self.deliveries: list[Delivery] = []
        self.failures = Failures()
        self.lock = threading.RLock()
        self._numbers = itertools.count(1)
        self._comment_ids = itertools.count(1001)
        self._repo_state()  # branches and default branches (connectors.github.fake_repo)

    # --- scripted failures ----------------------------------------------------------------------

    def fail(
        self,
        status: int,
        times: int = 1,
        retry_after: str | None = None,
        message: str = "scripted failure",
    ) -> None:
        """Answer the next `times` API requests with `status` (rate limits, outages)."""
        self.failures.add(Failure(status, times, retry_after, message))

    # --- payloads -------------------------------------------------------------------------------

    def _account(self, login: str) -> dict[str, Any]:
        kind = "Bot" if login.endswith("[bot]") else "User"
        return {"login": login, "id": abs(hash(login)) % 10**8, "type": kind}

    def pull_json(self, pull: FakePull) -> dict[str, Any]:
        """A pull request as the REST API and webhooks show it."""
        owner = pull.repo.split("/")[0]
        return {
            "url": f"{self.url}/repos/{pull.repo}/pulls/{pull.number}",
            "id": pull.number,
            "html_url": f"https://github.com/{pull.repo}/pull/{pull.number}",
            "number": pull.number,
            "state": pull.state,
            "locked": False,
            "title": pull.title,
            "user": self._account(pull.author),
            "body": pull.body,
            "created_at": pull.created_at,
            "updated_at": pull.updated_at,
            "closed_at": pull.updated_at if pull.state == "closed" else None,
            "merged_at": pull.updated_at if pull.merged else None,
            "labels": [{"name": label} for label in pull.labels],
            "draft": pull.draft,
            "merged": pull.merged,
            "merge_commit_sha": pull.head_sha if pull.merged else None,
            "head": {
                "label": f"{owner}:{pull.head_ref}",
                "ref": pull.head_ref,
                "sha": pull.head_sha,
                "repo": {"full_name": pull.repo, "owner": self._account(owner)},
            },
            "base": {
                "label": f"{owner}:{pull.base}",
                "ref": pull.base,
                "sha": "0" * 40,
                "repo": {"full_name": pull.repo, "owner": self._account(owner)},
            },
        }

    def _event(self, pull: FakePull, action: str, sender: str, **extra: Any) -> Delivery:
        owner, name = pull.repo.split("/")
        payload = {
            "action": action,
            "number": pull.number,
            "pull_request": self.pull_json(pull),
            "repository": {
                "id": abs(hash(pull.repo)) % 10**8,
                "name": name,
                "full_name": pull.repo,
                "owner": self._account(owner),
                "html_url": f"https://github.com/{pull.repo}",
            },
            "sender": self._account(sender),
            **extra,
        }
        delivery = Delivery("pull_request", payload)
        self.deliveries.append(delivery)
        return delivery

    # --- the simulated engineer -----------------------------------------------------------------

    def open_pull(
        self,
        repo: str,
        *,
        title: str,
        body: str | None,
        files: list[str],
        author: str = "octocat",
        labels: list[str] | None = None,
        base: str = "main",
        draft: bool = False,
    ) -> Delivery:
        """Open a pull request; returns its `opened` webhook."""
        with self.lock:
            number = next(self._numbers)
            pull = FakePull(repo, number, title, body, author, list(files), list(labels or ()))
            pull.base, pull.draft = base, draft
            self.pulls[(repo, number)] = pull
            return self._event(pull, "opened", author)

    def push(self, key: Key, files: list[str]) -> Delivery:
        """Push commits that touch `files` too; returns the `synchronize` webhook."""
        with self.lock:
            pull = self.pulls[key]
            pull.files.extend(f for f in files if f not in pull.files)
            pull.head_sha, pull.updated_at = secrets.token_hex(20), _now()
            return self._event(pull, "synchronize", pull.author)

    def edit_body(self, key: Key, body: str, by: str | None = None) -> Delivery:
        """Replace the body as a person would in the browser; returns the `edited` webhook."""
        with self.lock:
            pull = self.pulls[key]
            return self._set_body(pull, body, by or pull.author)

    def _set_body(self, pull: FakePull, body: str | None, sender: str) -> Delivery:
        before, pull.body, pull.updated_at = pull.body, body, _now()
        return self._event(pull, "edited", sender, changes={"body": {"from": before or ""}})

    def _item_line(self, pull: FakePull, placement_id: str) -> tuple[list[str], int]:
        lines = (pull.body or "").split("\n")
        marker = f"<!-- {marker_id(placement_id)} -->"
        for index, line in enumerate(lines):
            if marker in line:
                return lines, index
        raise KeyError(f"no Cairn item {placement_id!r} in {pull.repo}#{pull.number}")

    def tick(self, key: Key, placement_id: str, by: str | None = None) -> Delivery:
        """Tick an item's box, as clicking it does; returns the `edited` webhook."""
        with self.lock:
            pull = self.pulls[key]
            lines, index = self._item_line(pull, placement_id)
            lines[index] = lines[index].replace("- [ ]", "- [x]", 1)
            return self._set_body(pull, "\n".join(lines), by or pull.author)

    def dismiss(self, key: Key, placement_id: str, reason: str, by: str | None = None) -> Delivery:
        """Write `N/A: reason` on the line under the item; returns the `edited` webhook."""
        with self.lock:
            pull = self.pulls[key]
            lines, index = self._item_line(pull, placement_id)
            lines.insert(index + 2, f"  N/A: {reason}")  # below the item's detail line
            return self._set_body(pull, "\n".join(lines), by or pull.author)

    def merge(self, key: Key, by: str | None = None) -> Delivery:
        """Merge the pull request; returns the `closed` webhook (merged: true)."""
        with self.lock:
            pull = self.pulls[key]
            pull.state, pull.merged, pull.updated_at = "closed", True, _now()
            self.land(pull)
            return self._event(pull, "closed", by or pull.author)

    def close(self, key: Key, by: str | None = None) -> Delivery:
        """Close without merging; returns the `closed` webhook (merged: false)."""
        with self.lock:
            pull = self.pulls[key]
            pull.state, pull.updated_at = "closed", _now()
            return self._event(pull, "closed", by or pull.author)

    def add_files(self, key: Key, files: dict[str, str]) -> Delivery:
        """Push commits adding `files` (path → text); returns the `synchronize` webhook."""
        with self.lock:
            pull = self.pulls[key]
            pull.added.extend(f for f in files if f not in pull.added)
            for path, text in files.items():
                self.contents[(pull.repo, path)] = text
            return self.push(key, list(files))

    def seed_pull(self, payload: dict[str, Any], files: dict[str, str]) -> None:
        """Hold the pull request a recorded webhook describes, with the files it added."""
        with self.lock:
            pr, repo = payload["pull_request"], payload["repository"]["full_name"]
            pull = FakePull(
                repo, pr["number"], pr["title"], pr.get("body"), pr["user"]["login"], list(files)
            )
            pull.state, pull.merged = pr.get("state", "open"), bool(pr.get("merged"))
            pull.head_sha = pr.get("merge_commit_sha") or pull.head_sha
            pull.added = list(files)
            self.pulls[(repo, pull.number)] = pull
            for path, text in files.items():
                self.contents[(repo, path)] = text

    def seed_issue(self, payload: dict[str, Any], comments: list[tuple[str, str]]) -> None:
        """Hold the issue a recorded `issues` webhook describes, with (login, text) comments."""
        with self.lock:
            issue, repo = payload["issue"], payload["repository"]["full_name"]
            key = (repo, int(issue["number"]))
            self.issues[key] = issue
            self.comments[key] = []
            for login, text in comments:
                self._add_comment(key, issue["html_url"], text, login)

    def _add_comment(self, key: Key, html_url: str, body: str, author: str) -> dict[str, Any]:
        ident = next(self._comment_ids)
        made = {
            "id": ident,
            "url": f"{self.url}/repos/{key[0]}/issues/comments/{ident}",
            "html_url": f"{html_url}#issuecomment-{ident}",
            "body": body,
            "user": self._account(author),
            "created_at": _now(),
            "updated_at": _now(),
        }
        self.comments.setdefault(key, []).append(made)
        return made

    # --- delivering webhooks --------------------------------------------------------------------

    @staticmethod
    def signed(
        delivery: Delivery, secret: str, *, delivery_id: str | None = None, hook_id: str = "1"
    ) -> tuple[dict[str, str], bytes]:
        """Headers and body GitHub would POST (reuse `delivery_id` for a redelivery)."""
        body = delivery.body
        headers = sign(
            secret,
            body,
            event=delivery.event,
            delivery=delivery_id or str(uuid.uuid4()),
            hook_id=hook_id,
        )
        return headers, body

    def send(
        self, url: str, delivery: Delivery, secret: str, *, delivery_id: str | None = None
    ) -> httpx.Response:
        """POST a signed webhook to `url` (Cairn's `/hooks/github`) the way GitHub does."""
        headers, body = self.signed(delivery, secret, delivery_id=delivery_id)
        return httpx.post(url, content=body, headers=headers, timeout=10)

    # --- the API --------------------------------------------------------------------------------

    def _authorised(self, headers: dict[str, str], path: str) -> bool:
        scheme, _, credential = headers.get("authorization", "").partition(" ")
        if _TOKENS.match(path):
            return scheme.lower() == "bearer" and self._valid_jwt(credential)
        return scheme.lower() in ("token", "bearer") and credential in self.tokens

    def _valid_jwt(self, token: str) -> bool:
        if self.app_public_key is None:
            return False
        try:
            claims = jwt.decode(token, self.app_public_key, algorithms=["RS256"])
        except jwt.PyJWTError:
            return False
        return str(claims.get("iss")) == str(self.app_id)

    def dispatch(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Reply:
        """The answer to one API request."""
        parts = urlsplit(target)
        path, query = parts.path, parse_qs(parts.query)
        with self.lock:
            self.requests.append(f"{method} {path}")
            if not self._authorised(headers, path):
                return 401, {"message": "Bad credentials"}, {}
            data = json.loads(body) if body else {}
            if (match := _TOKENS.match(path)) and method == "POST":
                return self._issue_token()
            if (match := _CHECKS.match(path)) and method == "POST":
                return self._check_run(match.group("repo"), data)
            if (match := _CHECK.match(path)) and method == "PATCH":
                return self._edit_check_run(match["repo"], int(match["id"]), data)
            if (match := _REF_CHECKS.match(path)) and method == "GET":
                return self._ref_check_runs(match["repo"], unquote(match["ref"]), query)
            if match := _COMMENTS.match(path):
                key = (match["repo"], int(match["n"]))
                if key in self.issues and key not in self.pulls:
                    return self._issue_comments(method, key, path, query, data)
                return self._comments(method, match["repo"], int(match["n"]), path, query, data)
            if match := _ISSUES.match(path):
                return self._issues(method, match["repo"], path, query, data)
            if (match := _ISSUE.match(path)) and (match["repo"], int(match["n"])) in self.issues:
                return self._issue(method, (match["repo"], int(match["n"])), data)
            if (reply := self.repository(method, path, query, data)) is not None:
                return reply
            if (match := _CONTENTS.match(path)) and method == "GET":
                return self._content(match["repo"], unquote(match["path"]), query)
            match = _PULL.match(path)
            pull = None if match is None else self.pulls.get((match["repo"], int(match["n"])))
            if match is None or pull is None:
                return 404, {"message": "Not Found"}, {}
            key = (pull.repo, pull.number)
            if match["files"] and method == "GET":
                self.reads[key] += 1
                return self._files(pull, path, query)
            if method == "GET":
                self.reads[key] += 1
                return 200, self.pull_json(pull), {}
            if method == "PATCH":
                self.writes[key] += 1
                if "body" in data:
                    self._set_body(pull, data["body"], self.actor)
                return 200, self.pull_json(pull), {}
            return 405, {"message": "Method Not Allowed"}, {}

    def _issue_token(self) -> Reply:
        token = "ghs_" + secrets.token_hex(16)
        self.tokens.add(token)
        expires = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        return 201, {"token": token, "expires_at": expires, "permissions": {}}, {}

    def _count(self, repo: str, head_sha: Any, counter: Counter[Key]) -> None:
        for pull in self.pulls.values():
            if pull.repo == repo and pull.head_sha == head_sha:
                counter[(repo, pull.number)] += 1

    def _check_run(self, repo: str, data: dict[str, Any]) -> Reply:
        if not isinstance(data.get("name"), str) or not isinstance(data.get("head_sha"), str):
            return 422, {"message": "Validation Failed"}, {}
        self._count(repo, data["head_sha"], self.writes)
        ident = len(self.check_runs) + 1
        run = {
            "id": ident,
            "url": f"{self.url}/repos/{repo}/check-runs/{ident}",
            "html_url": f"https://github.com/{repo}/runs/{ident}",
            "repo": repo,
            "status": "queued",
            "conclusion": None,
            "output": {"title": None, "summary": None, "text": None},
            "started_at": _now(),
            **data,
        }
        self.check_runs.append(run)
        return 201, run, {}

    def _issues(
        self, method: str, repo: str, path: str, query: dict[str, list[str]], data: dict[str, Any]
    ) -> Reply:
        """`GET` (`state`, `labels` filters, newest first, paginated) or `POST` an issue."""
        if method == "GET":
            state = query.get("state", ["open"])[0]
            wanted = {n for n in query.get("labels", [""])[0].split(",") if n}
            listed = [
                issue
                for (owner, _n), issue in sorted(self.issues.items(), key=lambda kv: -kv[0][1])
                if owner == repo
                and (state == "all" or issue.get("state") == state)
                and wanted <= {label["name"] for label in issue.get("labels") or []}
            ]
            self.reads[(repo, 0)] += 1
            return self._page(listed, path, query)
        if method != "POST":
            return 405, {"message": "Method Not Allowed"}, {}
        if not isinstance(data.get("title"), str) or not data["title"].strip():
            return 422, {"message": "Validation Failed"}, {}
        number = next(self._numbers)
        now = _now()
        issue = {
            "id": 5_000_000 + number,
            "number": number,
            "url": f"{self.url}/repos/{repo}/issues/{number}",
            "repository_url": f"{self.url}/repos/{repo}",
            "html_url": f"https://github.com/{repo}/issues/{number}",
            "title": data["title"],
            "body": data.get("body"),
            "state": "open",
            "state_reason": None,
            "labels": [{"name": str(n)} for n in data.get("labels") or []],
            "user": self._account(self.actor),
            "comments": 0,
            "created_at": now,
            "updated_at": now,
            "closed_at": None,
        }
        self.issues[(repo, number)] = issue
        self.writes[(repo, number)] += 1
        return 201, issue, {}

    def _issue(self, method: str, key: Key, data: dict[str, Any]) -> Reply:
        """`GET` or `PATCH` (title, body, state, labels) one issue."""
        issue = self.issues[key]
        if method == "GET":
            self.reads[key] += 1
            return 200, issue, {}
        if method != "PATCH":
            return 405, {"message": "Method Not Allowed"}, {}
        self.writes[key] += 1
        for name in ("title", "body", "state", "state_reason"):
            if name in data:
                issue[name] = data[name]
        if "labels" in data:
            issue["labels"] = [{"name": str(n)} for n in data["labels"] or []]
        issue["updated_at"] = _now()
        issue["closed_at"] = issue["updated_at"] if issue["state"] == "closed" else None
        return 200, issue, {}

    def close_issue(self, key: Key, reason: str = "completed") -> None:
        """Close an issue as a person would in the browser."""
        with self.lock:
            issue = self.issues[key]
            issue["state"], issue["state_reason"] = "closed", reason
            issue["updated_at"] = issue["closed_at"] = _now()

    def _edit_check_run(self, repo: str, ident: int, data: dict[str, Any]) -> Reply:
        run = next((r for r in self.check_runs if r["id"] == ident and r["repo"] == repo), None)
        if run is None:
            return 404, {"message": "Not Found"}, {}
        self._count(repo, run["head_sha"], self.writes)
        run.update({k: v for k, v in data.items() if k not in ("id", "url", "repo")})
        return 200, run, {}

    def _ref_check_runs(self, repo: str, ref: str, query: dict[str, list[str]]) -> Reply:
        """`GET /repos/{o}/{r}/commits/{ref}/check-runs`: newest first, `check_name` and
        `filter=latest` (the newest run of each name) honoured."""
        self._count(repo, ref, self.reads)
        runs = [r for r in reversed(self.check_runs) if r["repo"] == repo and r["head_sha"] == ref]
        name = query.get("check_name", [None])[0]
        if name is not None:
            runs = [r for r in runs if r["name"] == name]
        if query.get("filter", ["latest"])[0] == "latest":
            newest: dict[str, dict[str, Any]] = {}
            for run in runs:
                newest.setdefault(run["name"], run)
            runs = list(newest.values())
        per_page = min(100, int(query.get("per_page", ["30"])[0]))
        page = int(query.get("page", ["1"])[0])
        chunk = runs[(page - 1) * per_page : page * per_page]
        return 200, {"total_count": len(runs), "check_runs": chunk}, {}

    def check_run(self, key: Key) -> dict[str, Any] | None:
        """The newest check run (of any name) on a pull request's head commit, or None."""
        with self.lock:
            pull = self.pulls[key]
            runs = [r for r in self.check_runs if r["repo"] == pull.repo]
            return next((r for r in reversed(runs) if r["head_sha"] == pull.head_sha), None)

    def _files(self, pull: FakePull, path: str, query: dict[str, list[str]]) -> Reply:
        listed = [
            {
                "sha": "0" * 40,
                "filename": f,
                "status": "added" if f in pull.added else "modified",
                "additions": 1,
                "deletions": 0,
            }
            for f in pull.files
        ]
        return self._page(listed, path, query)

    def _page(self, listed: list[Any], path: str, query: dict[str, list[str]]) -> Reply:
        per_page = min(100, int(query.get("per_page", ["30"])[0]))
        page = int(query.get("page", ["1"])[0])
        pages = max(1, -(-len(listed) // per_page))
        chunk = listed[(page - 1) * per_page : page * per_page]
        links = []
        if page < pages:
            links.append(f'<{self.url}{path}?per_page={per_page}&page={page + 1}>; rel="next"')
            links.append(f'<{self.url}{path}?per_page={per_page}&page={pages}>; rel="last"')
        return 200, chunk, {"Link": ", ".join(links)} if links else {}

    def _comments(
        self,
        method: str,
        repo: str,
        number: int,
        path: str,
        query: dict[str, list[str]],
        data: dict[str, Any],
    ) -> Reply:
        pull = self.pulls.get((repo, number))
        if pull is None:
            return 404, {"message": "Not Found"}, {}
        key = (repo, number)
        listed = self.comments.setdefault(key, [])
        if method == "GET":
            self.reads[key] += 1
            since = query.get("since", [None])[0]
            if since:  # GitHub: only comments updated at or after the time (ISO 8601, UTC)
                listed = [c for c in listed if str(c["updated_at"]) >= since.replace("+00:00", "Z")]
            return self._page(listed, path, query)
        if method != "POST":
            return 405, {"message": "Method Not Allowed"}, {}
        if not isinstance(data.get("body"), str) or not data["body"]:
            return 422, {"message": "Validation Failed"}, {}
        self.writes[key] += 1
        return 201, self.comment(pull, data["body"], self.actor), {}

    def _content(self, repo: str, path: str, query: dict[str, list[str]]) -> Reply:
        text = self.contents.get((repo, path))
        if text is None:
            return 404, {"message": "Not Found"}, {}
        return 200, self._file_json(repo, path, text, query.get("ref", [None])[0]), {}

    def _issue_comments(
        self, method: str, key: Key, path: str, query: dict[str, list[str]], data: dict[str, Any]
    ) -> Reply:
        listed = self.comments.setdefault(key, [])
        if method == "GET":
            self.reads[key] += 1
            return self._page(listed, path, query)
        if method != "POST" or not isinstance(data.get("body"), str) or not data["body"]:
            return 422, {"message": "Validation Failed"}, {}
        self.writes[key] += 1
        return (
            201,
            self._add_comment(key, self.issues[key]["html_url"], data["body"], self.actor),
            {},
        )

    def comment(self, pull: FakePull, body: str, author: str) -> dict[str, Any]:
        """Add a comment to the pull request's conversation (queues `issue_comment`)."""
        with self.lock:
            ident = next(self._comment_ids)
            url = f"{self.url}/repos/{pull.repo}/issues/comments/{ident}"
            made = {
                "id": ident,
                "url": url,
                "html_url": f"https://github.com/{pull.repo}/pull/{pull.number}#issuecomment-{ident}",
                "body": body,
                "user": self._account(author),
                "created_at": _now(),
                "updated_at": _now(),
            }
            self.comments.setdefault((pull.repo, pull.number), []).append(made)
            issue = {**self.pull_json(pull), "pull_request": {"url": self.pull_json(pull)["url"]}}
            payload = {
                "action": "created",
                "issue": issue,
                "comment": made,
                "repository": {"full_name": pull.repo},
                "sender": self._account(author),
            }
            self.deliveries.append(Delivery("issue_comment", payload))
            return made

    def answer(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Reply:
        """The scripted failure due, or the answer to the API request."""
        failure = self.failures.next()
        if failure is None:
            return self.dispatch(method, target, headers, body)
        return failure.status, {"message": failure.message}, failure.headers

    def target(self, **options: Any) -> GitHubTarget:
        """A GitHubTarget signed in with a token to this fake as its actor, with fast retries and
        no pacing unless `options` say otherwise."""
        options.setdefault("own_actor", self.actor)
        options.setdefault("policy", RetryPolicy(attempts=3, base_wait=0.01, max_wait=5))
        options.setdefault("seconds_between_requests", 0)
        options.setdefault("seconds_between_writes", 0)
        return GitHubTarget.with_token("ghp_fake", base_url=self.url, **options)

    @contextmanager
    def running(self) -> Iterator["FakeGitHub"]:
        """Serve on an ephemeral loopback port until the block ends; `url` is set meanwhile."""
        with serve(self.answer, content_type="application/json; charset=utf-8") as url:
            self.url = url
            yield self
